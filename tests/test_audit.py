"""Audit log: SQLite under RAGCDS_HOME, migrations, off switch."""

from __future__ import annotations

import json
import os
import sqlite3
import stat

import pytest

from ragcds import audit
from ragcds.errors import AuditLogError
from ragcds.generate.base import Answer
from tests.test_formats import PASSAGES


def make_answer() -> Answer:
    return Answer(
        question="q?",
        format="prose",
        text="a [1]",
        mode="rag",
        policy="answered",
        model="m",
        backend="fake",
        passages=list(PASSAGES),
        timings={"total": 0.25},
        index_version="v1",
    )


def test_log_and_list(ragcds_home):
    rid = audit.log_answer(make_answer())
    assert rid == 1 and (ragcds_home / "logs.db").exists()
    rows = audit.recent(5)
    assert (
        rows[0]["question"] == "q?"
        and rows[0]["chunk_ids"] == ["c1", "c2"]
        and rows[0]["latency_ms"] == 250.0
    )
    assert rows[0]["pages"] == [["100"], ["37"]] and rows[0]["index_version"] == "v1"


def test_off_switch(monkeypatch, ragcds_home):
    monkeypatch.setenv("RAGCDS_LOG", "0")
    assert audit.log_answer(make_answer()) is None
    assert not (ragcds_home / "logs.db").exists()


def test_migrations_upgrade_an_old_database(ragcds_home):
    ragcds_home.mkdir(parents=True)
    con = sqlite3.connect(ragcds_home / "logs.db")
    con.execute("CREATE TABLE _migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
    con.execute(audit.MIGRATIONS[0])
    con.execute("INSERT INTO _migrations VALUES (1, 'then')")
    con.commit()
    con.close()
    audit.log_answer(make_answer())
    with audit.connect() as con:
        assert audit.schema_version(con) == audit.SCHEMA_VERSION == 3
    assert audit.recent(1)[0]["citations"] == []


def test_log_is_private(ragcds_home):
    audit.log_answer(make_answer())
    assert stat.S_IMODE(ragcds_home.stat().st_mode) == 0o700
    assert stat.S_IMODE((ragcds_home / "logs.db").stat().st_mode) == 0o600


def test_an_existing_world_readable_log_is_narrowed(ragcds_home):
    audit.log_answer(make_answer())
    os.chmod(ragcds_home / "logs.db", 0o644)
    audit.log_answer(make_answer())
    assert stat.S_IMODE((ragcds_home / "logs.db").stat().st_mode) == 0o600


def test_unwritable_home_and_corrupt_db_raise_one_line_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("RAGCDS_HOME", str(tmp_path / "file"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(AuditLogError, match="cannot write .*set RAGCDS_HOME"):
        audit.log_answer(make_answer())
    home = tmp_path / "home"
    home.mkdir()
    (home / "logs.db").write_bytes(b"garbage" * 200)
    monkeypatch.setenv("RAGCDS_HOME", str(home))
    for call in (lambda: audit.log_answer(make_answer()), lambda: audit.recent(3)):
        with pytest.raises(AuditLogError, match="damaged.*mv "):
            call()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write a 0500 folder")
def test_read_only_home(ragcds_home):
    ragcds_home.mkdir(mode=0o500)
    with pytest.raises(AuditLogError, match="cannot write"):
        audit.log_answer(make_answer())


def test_escape_controls_shows_escape_sequences():
    text = "a\x1b[31mred\x07\x9b2J\u202eb\tc"
    shown = audit.escape_controls(text)
    assert shown == "a\\x1b[31mred\\x07\\x9b2J\\u202eb\\x09c"
    assert audit.escape_controls("line1\nline2", keep_newlines=True) == "line1\nline2"
    assert json.loads(audit.dumps_safe({"q": text})) == {"q": text} and "\x9b" not in audit.dumps_safe(text)


def test_the_log_keeps_the_answers_one_serialisation(ragcds_home):
    from ragcds.generate.answer import answer_to_json

    answer = make_answer()
    audit.log_answer(answer)
    record = audit.recent(1)[0]["record"]
    expected = answer_to_json(answer)
    assert [p["chunk_id"] for p in record["passages"]] == [p["chunk_id"] for p in expected["passages"]]
    assert all("text" not in p for p in record["passages"])  # the texts are in the index version it names
    for key in ("answer", "policy", "resolved", "triage", "citations", "index_version", "model"):
        assert record[key] == expected[key]
