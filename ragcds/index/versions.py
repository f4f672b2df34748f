"""Version administration: activation records, the history log, rollback and garbage collection.

Every activation (an update that passed its gates, a forced one, a rollback) is recorded twice, in the
version's ``activation.json`` and in ``INDEX/history.jsonl`` (both kept by ``ragcds.index.history``).

A version goes live only gated: one without a gate record (built by an update that was killed before its
gates, or by an older ragcds) has the gates run when it is activated, and stays inactive when they fail
unless ``force`` with a reason (recorded). Version ids are folder names inside ``INDEX/versions`` — never
paths — and a version's files must match its manifest's sha256 before it can go live.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ragcds.errors import CorruptIndex, GateFailed, IndexNotFound, RagcdsError
from ragcds.index import store
from ragcds.index.embedders import Embedder, load_embedder
from ragcds.index.gates import run_gates
from ragcds.index.history import (  # noqa: F401 - re-exported: versions is the administration API
    append_history,
    gate_status,
    now_iso,
    read_activation,
    read_history,
    rollback_target,
    version_rows,
    write_activation,
)
from ragcds.index.version import VersionData
from ragcds.retrieve import version_search


def require_reason(force: bool, reason: str) -> None:
    """``--force`` needs ``--reason`` (recorded with the version): the one check for ingest, update and
    activate, in the CLI (before anything is loaded) and in the library alike."""
    if force and not reason.strip():
        raise RagcdsError('--force needs --reason "why this version may go live" (it is recorded with the version)')


def version_dir(index_dir: Path, version_id: str) -> Path:
    """``INDEX/versions/<id>``; refuses an id that is a path or leaves the index (BadVersionId)."""
    return store.version_path(index_dir, version_id)


def check_complete(index_dir: Path, version_id: str) -> Path:
    """The version directory if it is complete and intact; otherwise a one-line error naming the fix."""
    vdir = version_dir(index_dir, version_id)
    if not vdir.is_dir():
        raise IndexNotFound(
            f"no version {version_id} in {index_dir} — list them: ragcds index versions --index {index_dir}"
        )
    if not (vdir / store.MANIFEST).exists():
        raise CorruptIndex(
            f"version {version_id} is incomplete (no manifest) and cannot be activated — "
            f"remove it: ragcds index gc --index {index_dir}"
        )
    problems = store.verify_version(vdir, store.read_manifest(vdir))
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        raise CorruptIndex(
            f"version {version_id} is damaged ({problems[0]}{more}) and cannot be used — pick an intact "
            f"one: ragcds index verify --all --index {index_dir}"
        )
    return vdir


def intact_live_version(index_dir: Path, exclude: str | None = None) -> Path | None:
    """The live version directory when it loads and every file matches its manifest; else None (gates then
    run without a comparison, as for a first build)."""
    try:
        vdir = store.resolve_version_dir(Path(index_dir))
        if vdir.name == exclude or store.verify_version(vdir):
            return None
        return vdir
    except RagcdsError:
        return None


def gate_version(index_dir: Path, vdir: Path, embedder: Embedder | None = None, settings=None):
    """Run the validation gates on a version that has none recorded (compared with the live version when
    that one is intact) and record the result in its activation.json. Returns the GateReport."""
    manifest = store.read_manifest(vdir)
    emb = embedder or load_embedder(manifest.embedder.ref)
    prev = intact_live_version(index_dir, exclude=vdir.name)
    report = run_gates(VersionData.load(vdir), VersionData.load(prev) if prev else None, version_search(emb), settings)
    write_activation(
        vdir,
        {
            "version_id": vdir.name,
            "decided_at": now_iso(),
            "previous": store.current_version(Path(index_dir)),
            "status": "live-candidate" if report.passed else "blocked",
            "forced": False,
            "reason": "",
            "gates": report.to_dict(),
            "gated_by": "activate",
        },
    )
    return report


def activate(
    index_dir: Path,
    version_id: str,
    *,
    force: bool = False,
    reason: str = "",
    event: str = "activate",
    embedder: Embedder | None = None,
) -> dict:
    """Make a complete, intact version live (rollback or manual activation). A version never gated is gated
    first; one whose gates failed needs ``force`` and a reason. Returns the history row (plus
    ``gate_report`` when the gates ran now)."""
    index_dir = Path(index_dir)
    require_reason(force, reason)
    with store.writer_lock(index_dir, create=False):
        vdir = check_complete(index_dir, version_id)
        version_id = vdir.name
        previous = store.current_version(index_dir)
        rec = read_activation(vdir) or {}
        report = None
        if rec.get("gates") is None and not force:
            report = gate_version(index_dir, vdir, embedder)
            rec = read_activation(vdir) or {}
        failed = rec.get("gates") is not None and not rec["gates"].get("passed")
        if failed and not rec.get("forced") and not force:
            if report is not None:
                append_history(index_dir, "blocked", **{"from": previous, "to": previous, "candidate": version_id,
                                                        "gates_passed": False, "failed_gates": report.failed})
            ran = f"its gates ran now and failed ({', '.join(report.failed)})" if report else "it failed its gates"
            raise GateFailed(
                f"version {version_id} stays inactive: {ran} — to activate it anyway: "
                f'ragcds index activate {version_id} --force --reason "..." --index {index_dir}'
            )
        forced = bool(force and (failed or rec.get("gates") is None))
        if forced:
            write_activation(
                vdir,
                {**rec, "version_id": version_id, "forced": True, "reason": reason, "status": "live-candidate",
                 "forced_at": now_iso()},
            )
        store.set_current(index_dir, version_id)
        gates_passed = rec["gates"].get("passed") if rec.get("gates") is not None else None
        row = append_history(
            index_dir,
            event,
            **{"from": previous, "to": version_id, "gates_passed": gates_passed, "forced": forced, "reason": reason},
        )
        return {**row, "gate_report": report}


def gc(index_dir: Path, keep: int) -> dict:
    """Keep the ``keep`` newest complete versions plus the live one; delete the rest, incomplete version
    folders and stale ``.tmp-*`` build folders. Never deletes the live version."""
    if keep < 1:
        raise RagcdsError("--keep must be at least 1 (the live version is always kept)")
    index_dir = Path(index_dir)
    removed: list[str] = []
    with store.writer_lock(index_dir, create=False):
        temps = store.remove_stale_temps(index_dir)
        live = store.current_version(index_dir)
        rows = version_rows(index_dir)
        newest = {r["version_id"] for r in rows[-keep:]}
        for r in rows:
            if r["version_id"] in newest or r["version_id"] == live:
                continue
            shutil.rmtree(version_dir(index_dir, r["version_id"]))
            removed.append(r["version_id"])
        vroot = index_dir / store.VERSIONS
        incomplete = (
            [
                d
                for d in vroot.iterdir()
                if vroot.is_dir()
                and d.is_dir()
                and not d.name.startswith(".")
                and not (d / store.MANIFEST).exists()
                and d.name != live
            ]
            if vroot.is_dir()
            else []
        )
        for d in incomplete:
            shutil.rmtree(d, ignore_errors=True)
        if removed or temps or incomplete:
            append_history(
                index_dir,
                "gc",
                removed=removed,
                temps=temps,
                incomplete=[d.name for d in incomplete],
                keep=keep,
                live=live,
            )
    return {
        "removed": removed,
        "temps_removed": temps,
        "incomplete_removed": [d.name for d in incomplete],
        "kept": sorted(newest | ({live} if live else set())),
    }


def resolve_ref(ref: str | Path) -> Path:
    """A version directory from ``DIR@VERSION_ID``, a version directory, or an index directory (CURRENT)."""
    text = str(ref)
    if "@" in text and not Path(text).exists():
        base, _, vid = text.rpartition("@")
        return check_complete(Path(base), vid)
    return store.resolve_version_dir(Path(text))


def verify(index_dir: Path, all_versions: bool = False) -> dict:
    """Check the live version's files (or every version's) against their manifest's sha256.

    Returns ``{"ok", "versions": [{version_id, live, files, problems}], "hint"}``; hint names the fix when
    the live version is damaged."""
    index_dir = store.require_index(Path(index_dir))
    live_dir = store.resolve_version_dir(index_dir)  # raises, with the fix, when CURRENT is unusable
    live = live_dir.name
    vroot = index_dir / store.VERSIONS
    ids = (
        [d.name for d in sorted(vroot.iterdir()) if not d.name.startswith(".") and (d / store.MANIFEST).exists()]
        if all_versions
        else [live]
    )
    rows = []
    for vid in ids:
        vdir = vroot / vid
        try:
            manifest = store.read_manifest(vdir)
            problems, files = store.verify_version(vdir, manifest), len(manifest.files)
        except RagcdsError as exc:
            problems, files = [str(exc).split(" — ")[0]], 0
        rows.append({"version_id": vid, "live": vid == live, "files": files, "problems": problems})
    damaged = [r["version_id"] for r in rows if r["problems"]]
    hint = ""
    if live in damaged:
        hint = f"the live version {live} is damaged — {store.recovery_hint(index_dir, live)}"
    elif damaged:
        hint = (
            f"version(s) {', '.join(damaged)} are damaged and will be refused by ragcds index activate; "
            f"the live version {live} is intact"
        )
    return {"ok": not damaged, "versions": rows, "hint": hint}
