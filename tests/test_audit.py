"""Audit log: SQLite under RAGCDS_HOME, migrations, off switch."""

from __future__ import annotations

import sqlite3

from ragcds import audit
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
        assert audit.schema_version(con) == audit.SCHEMA_VERSION == 2
    assert audit.recent(1)[0]["citations"] == []
