"""Version administration: activation records, the history log, rollback and garbage collection.

Every activation (an update that passed its gates, a forced one, a rollback) is recorded twice:

* ``versions/<id>/activation.json`` — the gate report of that version, whether it was forced and why,
  and its status (``live-candidate`` written before the swap, ``blocked`` when a gate failed);
* ``INDEX/history.jsonl`` — one line per event: time, event, from, to, gates passed, forced, reason.

Neither file is read by the search path: readers only follow ``CURRENT``.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from ragcds.errors import CorruptIndex, IndexNotFound, RagcdsError
from ragcds.index import store

HISTORY = "history.jsonl"
ACTIVATION = "activation.json"


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def append_history(index_dir: Path, event: str, **fields: object) -> dict:
    """Append one event to ``INDEX/history.jsonl`` (one JSON object per line, fsynced)."""
    import os

    row = {"time": now_iso(), "event": event, **fields}
    path = Path(index_dir) / HISTORY
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return row


def read_history(index_dir: Path) -> list[dict]:
    path = Path(index_dir) / HISTORY
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a torn last line after a crash is skipped
            continue
    return rows


def write_activation(vdir: Path, record: dict) -> None:
    store.write_text_atomic(Path(vdir) / ACTIVATION, json.dumps(record, ensure_ascii=False, indent=1))


def read_activation(vdir: Path) -> dict | None:
    try:
        return json.loads((Path(vdir) / ACTIVATION).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def version_dir(index_dir: Path, version_id: str) -> Path:
    return Path(index_dir) / store.VERSIONS / version_id


def check_complete(index_dir: Path, version_id: str) -> Path:
    """The version directory if it is complete and loadable; otherwise a one-line error naming the fix."""
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
    manifest = store.read_manifest(vdir)
    missing = [name for name in manifest.get("files", {}) if not (vdir / name).exists()]
    if missing:
        raise CorruptIndex(
            f"version {version_id} is missing {', '.join(missing[:3])} and cannot be activated"
        )
    return vdir


def gate_status(vdir: Path) -> str:
    """passed / FAILED / forced / - (no gates run: built by `ragcds ingest`)."""
    rec = read_activation(vdir)
    if not rec or rec.get("gates") is None:
        return "-"
    if rec.get("forced"):
        return "forced"
    return "passed" if rec["gates"].get("passed") else "FAILED"


def version_rows(index_dir: Path) -> list[dict]:
    """One row per complete version, oldest first (build time, then manifest write time): id, built_at,
    source, chunks, live, gate status."""
    live = store.current_version(Path(index_dir))
    rows = []
    for m in store.list_versions(Path(index_dir)):
        vid = m["version_id"]
        vdir = version_dir(index_dir, vid)
        rows.append(
            {
                "version_id": vid,
                "built_at": m.get("built_at", ""),
                "source_file": m.get("source", {}).get("file", ""),
                "source_sha256": m.get("source", {}).get("sha256", ""),
                "pages": m.get("source", {}).get("pages"),
                "chunks": m.get("chunk_count"),
                "embedder": m.get("embedder", {}).get("id", ""),
                "live": vid == live,
                "gates": gate_status(vdir),
                "_written": (vdir / store.MANIFEST).stat().st_mtime_ns,
            }
        )
    rows.sort(key=lambda r: (r["built_at"], r.pop("_written")))  # built_at has 1 s resolution
    return rows


def activate(
    index_dir: Path, version_id: str, *, force: bool = False, reason: str = "", event: str = "activate"
) -> dict:
    """Make a complete version live (rollback or manual activation). A version whose gates failed needs
    ``force`` and a reason. Returns the history row."""
    index_dir = Path(index_dir)
    with store.writer_lock(index_dir):
        vdir = check_complete(index_dir, version_id)
        rec = read_activation(vdir) or {}
        failed = rec.get("gates") is not None and not rec["gates"].get("passed")
        if failed and not rec.get("forced") and not force:
            raise RagcdsError(
                f"version {version_id} failed its validation gates — to activate it anyway: "
                f'ragcds index activate {version_id} --force --reason "..." --index {index_dir}'
            )
        if force and not reason.strip():
            raise RagcdsError('--force needs --reason "why this version may go live" (it is recorded)')
        previous = store.current_version(index_dir)
        if force and failed:
            write_activation(
                vdir,
                {**rec, "forced": True, "reason": reason, "status": "live-candidate", "forced_at": now_iso()},
            )
        store.set_current(index_dir, version_id)
        gates_passed = rec["gates"].get("passed") if rec.get("gates") is not None else None
        return append_history(
            index_dir,
            event,
            **{
                "from": previous,
                "to": version_id,
                "gates_passed": gates_passed,
                "forced": bool(force and failed),
                "reason": reason,
            },
        )


def gc(index_dir: Path, keep: int) -> dict:
    """Keep the ``keep`` newest complete versions plus the live one; delete the rest, incomplete version
    folders and stale ``.tmp-*`` build folders. Never deletes the live version."""
    if keep < 1:
        raise RagcdsError("--keep must be at least 1 (the live version is always kept)")
    index_dir = Path(index_dir)
    removed: list[str] = []
    with store.writer_lock(index_dir):
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
