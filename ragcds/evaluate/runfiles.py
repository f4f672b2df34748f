"""The files of an evaluation run folder (OUT): config.json, items.jsonl, results.json.

items.jsonl is appended one fsynced record per item, so an interrupted run keeps every finished item; a
last line cut by the interruption is dropped before the next append. config.json holds the run's settings:
resuming with other settings is refused.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO

from ragcds.errors import RagcdsError
from ragcds.files import jsonl_text, read_jsonl, write_text_atomic

CONFIG = "config.json"
ITEMS = "items.jsonl"
RESULTS = "results.json"


class RunConfigMismatch(RagcdsError):
    """OUT holds a run made with other settings."""


def read_items(path: Path) -> list[dict]:
    """Complete records of items.jsonl (a last line cut by an interruption is ignored)."""
    return read_jsonl(path, skip_bad=True) if Path(path).exists() else []


def repair_tail(path: Path) -> None:
    """Drop a partial last line left by an interruption so the next append starts on a fresh line."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])


def read_config(out_dir: Path) -> dict:
    return json.loads((Path(out_dir) / CONFIG).read_text(encoding="utf-8"))


def claim_out(out_dir: Path, identity: dict, config: dict) -> None:
    """Create OUT (or check that its config.json has the same ``identity``), write ``config`` and make
    items.jsonl ready for appending."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if (out_dir / CONFIG).exists():
        old_id = {k: v for k, v in read_config(out_dir).items() if k != "limit"}
        diff = [
            f"{k}: {old_id.get(k)!r} -> {identity.get(k)!r}"
            for k in sorted(set(old_id) | set(identity))
            if old_id.get(k) != identity.get(k)
        ]
        if diff:
            raise RunConfigMismatch(
                f"{out_dir} holds a run with other settings ({'; '.join(diff)}); to start fresh pass a new "
                f"--out DIR or delete {out_dir}"
            )
    (out_dir / CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    repair_tail(out_dir / ITEMS)


def append_record(fh: IO[str], record: dict) -> None:
    """One record appended to an open items.jsonl, on disk before the next one is started."""
    fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    fh.flush()
    os.fsync(fh.fileno())


def write_items(out_dir: Path, items: list[dict]) -> None:
    """Replace items.jsonl atomically (re-scoring)."""
    write_text_atomic(Path(out_dir) / ITEMS, jsonl_text(items))


def write_results(out_dir: Path, results: dict) -> None:
    (Path(out_dir) / RESULTS).write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
