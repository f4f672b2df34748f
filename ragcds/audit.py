"""Audit log: every answer given by `ragcds ask` is appended to SQLite at RAGCDS_HOME/logs.db.

Off switch: `--no-log` on the command, or RAGCDS_LOG=0 in the environment. The schema is versioned:
`_migrations` records each applied migration; new columns come as new entries in MIGRATIONS.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ragcds.config import ragcds_home
from ragcds.generate.base import Answer

MIGRATIONS: tuple[str, ...] = (
    """CREATE TABLE answers (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts TEXT NOT NULL,
        question TEXT NOT NULL,
        format TEXT NOT NULL,
        model TEXT NOT NULL,
        backend TEXT NOT NULL,
        mode TEXT NOT NULL,
        policy TEXT NOT NULL,
        index_version TEXT NOT NULL,
        chunk_ids TEXT NOT NULL,
        pages TEXT NOT NULL,
        scores TEXT NOT NULL,
        answer TEXT NOT NULL,
        parse_ok INTEGER NOT NULL,
        latency_ms REAL NOT NULL
    )""",
    "ALTER TABLE answers ADD COLUMN citations TEXT NOT NULL DEFAULT '[]'",
)
SCHEMA_VERSION = len(MIGRATIONS)


def db_path() -> Path:
    return ragcds_home() / "logs.db"


def logging_enabled() -> bool:
    return os.environ.get("RAGCDS_LOG", "1").strip().lower() not in ("0", "false", "no", "off")


@contextmanager
def connect(path: Path | None = None) -> Iterator[sqlite3.Connection]:
    path = path or db_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    con.row_factory = sqlite3.Row
    try:
        migrate(con)
        yield con
        con.commit()
    finally:
        con.close()


def migrate(con: sqlite3.Connection) -> int:
    """Apply pending migrations in order; returns the schema version."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    done = {r[0] for r in con.execute("SELECT version FROM _migrations")}
    for version, sql in enumerate(MIGRATIONS, 1):
        if version not in done:
            with con:
                con.execute(sql)
                con.execute("INSERT INTO _migrations VALUES (?, ?)", (version, _now()))
    return schema_version(con)


def schema_version(con: sqlite3.Connection) -> int:
    row = con.execute("SELECT MAX(version) FROM _migrations").fetchone()
    return int(row[0] or 0)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def log_answer(answer: Answer, path: Path | None = None) -> int | None:
    """Append one answer; returns its row id, or None when logging is off (RAGCDS_LOG=0)."""
    if not logging_enabled():
        return None
    row = (
        _now(),
        answer.question,
        answer.format,
        answer.model,
        answer.backend,
        answer.mode,
        answer.policy,
        answer.index_version,
        json.dumps([h.chunk.chunk_id for h in answer.passages]),
        json.dumps([list(h.chunk.printed_pages) for h in answer.passages]),
        json.dumps([round(float(h.score), 6) for h in answer.passages]),
        answer.text + (f"\n\n{answer.quote}" if answer.quote else ""),
        int(answer.parse_ok),
        round(answer.timings.get("total", 0.0) * 1000, 1),
        json.dumps([{"n": c.n, "valid": c.valid, "chunk_id": c.chunk_id} for c in answer.citations]),
    )
    with connect(path) as con:
        cur = con.execute(
            "INSERT INTO answers (ts, question, format, model, backend, mode, policy, index_version, "
            "chunk_ids, "
            "pages, scores, answer, parse_ok, latency_ms, citations) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            row,
        )
        return int(cur.lastrowid or 0)


def recent(n: int = 20, path: Path | None = None) -> list[dict]:
    """The last n logged answers, newest first (JSON-ready dicts)."""
    path = path or db_path()
    if not path.exists():
        return []
    with connect(path) as con:
        rows = con.execute("SELECT * FROM answers ORDER BY id DESC LIMIT ?", (n,)).fetchall()
    out = []
    for r in rows:
        d = dict(r)
        for key in ("chunk_ids", "pages", "scores", "citations"):
            d[key] = json.loads(d[key])
        d["parse_ok"] = bool(d["parse_ok"])
        out.append(d)
    return out
