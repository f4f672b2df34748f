"""Audit log: every answer given by `ragcds ask` is appended to SQLite at RAGCDS_HOME/logs.db.

Off switch: `--no-log` on the command, or RAGCDS_LOG=0 in the environment. The schema is versioned:
`_migrations` records each applied migration; new columns come as new entries in MIGRATIONS.

Privacy: the log holds clinical questions, so RAGCDS_HOME is created 0700 and logs.db 0600 (an existing
logs.db readable by others is narrowed to 0600; SQLite gives its journal the same mode). Any failure to open
or write the log raises :class:`AuditLogError` with the reason and the fix; `ragcds ask` then still shows the
answer and says in one line that it was not logged.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ragcds.config import ragcds_home
from ragcds.errors import AuditLogError
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
    # the whole answer as `ask --json` prints it (ragcds.generate.answer.answer_to_json), passage texts left out
    "ALTER TABLE answers ADD COLUMN record TEXT NOT NULL DEFAULT '{}'",
)
SCHEMA_VERSION = len(MIGRATIONS)


def db_path() -> Path:
    return ragcds_home() / "logs.db"


def logging_enabled() -> bool:
    return os.environ.get("RAGCDS_LOG", "1").strip().lower() not in ("0", "false", "no", "off")


def _private_file(path: Path) -> None:
    """Create RAGCDS_HOME (0700) and logs.db (0600) if absent; narrow an existing logs.db to 0600."""
    home = path.parent
    if not home.exists():
        home.mkdir(mode=0o700, parents=True)
        os.chmod(home, 0o700)
    if path.exists():
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            os.chmod(path, 0o600)
    else:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


def _error(exc: BaseException, path: Path) -> AuditLogError:
    """One line: what went wrong with the log at ``path`` and the fix."""
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    damaged = ("not a database", "malformed", "disk image")
    if isinstance(exc, sqlite3.DatabaseError) and any(d in str(exc).lower() for d in damaged):
        return AuditLogError(
            f"{path} is damaged ({reason}) — move it aside to start a new log: mv {path} {path}.damaged"
        )
    return AuditLogError(
        f"cannot write {path} ({reason}) — make {path.parent} a writable folder, or set RAGCDS_HOME to one"
    )


@contextmanager
def connect(path: Path | None = None) -> Iterator[sqlite3.Connection]:
    """An open, migrated connection to the log; any failure becomes AuditLogError (reason and fix)."""
    path = path or db_path()
    try:
        _private_file(path)
        con = sqlite3.connect(path)
    except (OSError, sqlite3.Error) as exc:
        raise _error(exc, path) from exc
    con.row_factory = sqlite3.Row
    try:
        migrate(con)
        yield con
        con.commit()
    except sqlite3.Error as exc:
        raise _error(exc, path) from exc
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


def _record(answer: Answer) -> dict:
    from ragcds.generate.answer import answer_record

    return answer_record(answer)


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
        json.dumps(_record(answer), ensure_ascii=False),
    )
    with connect(path) as con:
        cur = con.execute(
            "INSERT INTO answers (ts, question, format, model, backend, mode, policy, index_version, "
            "chunk_ids, "
            "pages, scores, answer, parse_ok, latency_ms, citations, record) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            row,
        )
        return int(cur.lastrowid or 0)


_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def escape_controls(text: str, keep_newlines: bool = False) -> str:
    """``text`` with control characters, terminal escape sequences and bidi overrides made visible
    (``\\x1b``, ``\\u202e``), so a stored question cannot drive the terminal it is printed on."""

    def visible(m: re.Match) -> str:
        ch = m.group(0)
        if keep_newlines and ch == "\n":
            return ch
        return f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"

    return _UNSAFE.sub(visible, text)


_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")  # json escapes < 0x20


def dumps_safe(obj: object) -> str:
    """JSON with every control and bidi character escaped (json.dumps leaves DEL, C1 and bidi raw)."""
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group(0)):04x}", json.dumps(obj, ensure_ascii=False, indent=1))


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
        for key in ("chunk_ids", "pages", "scores", "citations", "record"):
            d[key] = json.loads(d[key])
        d["parse_ok"] = bool(d["parse_ok"])
        out.append(d)
    return out
