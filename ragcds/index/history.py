"""Activation records and the history log of an index, and the version listing built from them.

* ``versions/<id>/activation.json`` — the gate report of that version, whether it was forced and why, and
  its status (``live-candidate`` written before the swap, ``blocked`` when a gate failed);
* ``INDEX/history.jsonl`` — one line per event: time, event, from, to, gates passed, forced, reason.

Neither file is read by the search path: readers only follow ``CURRENT``. The store names a rollback target
from here when the live version is damaged, so this module reads files only (no index loading).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ragcds.config import INDEX_FORMAT_VERSION
from ragcds.files import read_jsonl, write_text_atomic
from ragcds.index.integrity import file_problems
from ragcds.index.layout import MANIFEST, VERSIONS, current_version, list_versions, version_path

HISTORY = "history.jsonl"
ACTIVATION = "activation.json"


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def append_history(index_dir: Path, event: str, **fields: object) -> dict:
    """Append one event to ``INDEX/history.jsonl`` (one JSON object per line, fsynced)."""
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
    return read_jsonl(path, skip_bad=True)  # a torn last line after a crash is skipped


def write_activation(vdir: Path, record: dict) -> None:
    write_text_atomic(Path(vdir) / ACTIVATION, json.dumps(record, ensure_ascii=False, indent=1))


def read_activation(vdir: Path) -> dict | None:
    try:
        return json.loads((Path(vdir) / ACTIVATION).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def rollback_target(index_dir: Path, broken: str | None) -> str | None:
    """An intact version that ``ragcds index activate`` would accept in place of ``broken``: the one that was
    live before it (history), else the newest other one. None when there is none."""
    index_dir = Path(index_dir)
    rows = {r["version_id"]: r for r in reversed(version_rows(index_dir))}  # newest first
    before = [r.get("from") for r in reversed(read_history(index_dir)) if r.get("to") == broken and r.get("from")]
    for vid in dict.fromkeys([*before, *rows]):
        if vid == broken or vid not in rows or rows[vid]["gates"] == "FAILED":  # FAILED would need --force
            continue
        if _intact(index_dir / VERSIONS / vid):
            return vid
    return None


def gate_status(vdir: Path) -> str:
    """passed / FAILED / forced / - (never gated: the gates run when it is activated)."""
    rec = read_activation(vdir) or {}
    if rec.get("forced"):
        return "forced"
    if rec.get("gates") is None:
        return "-"
    return "passed" if rec["gates"].get("passed") else "FAILED"


def version_rows(index_dir: Path) -> list[dict]:
    """One row per complete version, oldest first (build time, then manifest write time): id, built_at,
    source, chunks, live, gate status."""
    live = current_version(Path(index_dir))
    rows = []
    for m in list_versions(Path(index_dir)):
        vid = m.version_id
        vdir = version_path(index_dir, vid)
        rows.append(
            {
                "version_id": vid,
                "built_at": m.built_at,
                "source_file": m.source.file,
                "source_sha256": m.source.sha256,
                "pages": m.source.pages,
                "chunks": m.chunk_count,
                "embedder": m.embedder.id,
                "live": vid == live,
                "gates": gate_status(vdir),
                "_written": (vdir / MANIFEST).stat().st_mtime_ns,
            }
        )
    rows.sort(key=lambda r: (r["built_at"], r.pop("_written")))  # built_at has 1 s resolution
    return rows


def _intact(vdir: Path) -> bool:
    """A version this ragcds can load: a readable manifest of the current format, every file intact."""
    try:
        manifest = json.loads((vdir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(manifest, dict) or manifest.get("format_version") != INDEX_FORMAT_VERSION:
        return False
    return not file_problems(vdir, manifest.get("files"))
