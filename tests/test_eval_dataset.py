"""Question-set schema validation: one clear line per problem, naming line and field."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ragcds.cli.main import app
from ragcds.errors import BadQuestionFile
from ragcds.evaluate.dataset import extra_fields, load_questions, validate_file

GOOD = {
    "id": "x-1",
    "question": "What is it?",
    "kind": "fact",
    "gold_pages": [3],
    "gold_section": "1.1",
    "gold_title": "T",
    "key_facts": [["a", "b"]],
    "triage": None,
}


def write(tmp_path, rows) -> object:
    p = tmp_path / "qs.jsonl"
    p.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return p


def test_valid_file_loads(tmp_path):
    p = write(
        tmp_path, [GOOD, GOOD | {"id": "x-2", "kind": "out_of_scope", "gold_pages": [], "key_facts": []}]
    )
    assert validate_file(p) == []
    qs = load_questions(p)
    assert [q.id for q in qs] == ["x-1", "x-2"] and qs[0].key_facts == (("a", "b"),) and qs[0].chapter == "1"
    assert len(load_questions(p, limit=1)) == 1


@pytest.mark.parametrize(
    "row, expected",
    [
        ("{not json", "qs.jsonl:2: not valid JSON"),
        (
            GOOD | {"id": "x-3", "gold_pages": "12"},
            "qs.jsonl:2: field 'gold_pages': expected a list of positive",
        ),
        (GOOD | {"id": "x-3", "kind": "quiz"}, "qs.jsonl:2: field 'kind': \"quiz\" is not one of"),
        (GOOD | {"id": "x-3", "triage": "soon"}, "qs.jsonl:2: field 'triage'"),
        (GOOD | {"id": "x-3", "key_facts": ["a"]}, "qs.jsonl:2: field 'key_facts'"),
        (
            {k: v for k, v in GOOD.items() if k != "question"} | {"id": "x-3"},
            "qs.jsonl:2: field 'question': missing",
        ),
        (
            {k: v for k, v in GOOD.items() if k != "gold_pages"} | {"id": "x-3", "gold_page": [3]},
            "qs.jsonl:2: field 'gold_pages': missing (is 'gold_page' a misspelling of it?)",
        ),
        (GOOD, "qs.jsonl:2: field 'id': duplicate id \"x-1\" (first on line 1)"),
        (GOOD | {"id": "x-3", "kind": "out_of_scope"}, "qs.jsonl:2: field 'gold_pages': must be empty"),
    ],
)
def test_invalid_lines_are_named(tmp_path, row, expected):
    errs = validate_file(write(tmp_path, [GOOD, row]))
    assert len(errs) == 1 and errs[0].startswith(expected), errs
    with pytest.raises(BadQuestionFile, match="qs.jsonl:2"):
        load_questions(tmp_path / "qs.jsonl")


def test_validate_cli(tmp_path):
    runner = CliRunner()
    ok = runner.invoke(app, ["eval", "validate", str(write(tmp_path, [GOOD]))])
    assert ok.exit_code == 0 and "1 questions, valid" in ok.output
    bad = runner.invoke(
        app, ["eval", "validate", str(write(tmp_path, [GOOD, GOOD | {"id": "y", "kind": "x"}]))]
    )
    assert bad.exit_code == 1 and "qs.jsonl:2: field 'kind'" in bad.output
    missing = runner.invoke(app, ["eval", "validate", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 1


def test_dev_set_is_valid(dev_set):
    assert validate_file(dev_set) == []


def test_extra_fields_are_kept_not_rejected(tmp_path):
    extra = {"source": "UCG p. 12", "notes": "checked by a nurse", "author": "am"}
    p = write(tmp_path, [GOOD | extra, GOOD | {"id": "x-2", "author": "bk"}])
    assert validate_file(p) == []
    qs = load_questions(p)
    assert qs[0].extra == extra and qs[1].extra == {"author": "bk"}
    assert extra_fields(qs) == ["author", "notes", "source"]
    (tmp_path / "plain").mkdir()
    plain = load_questions(write(tmp_path / "plain", [GOOD]))[0]
    assert qs[0] == plain and len({qs[0], qs[1], plain}) == 2  # hashable; extra is not compared
    ok = CliRunner().invoke(app, ["eval", "validate", str(p)])
    assert ok.exit_code == 0 and "2 questions, valid" in ok.output and "author, notes, source" in ok.output
    wrong = write(tmp_path, [GOOD | {"source": "x", "triage": "later"}])  # extra fields excuse nothing
    assert validate_file(wrong) == [
        "qs.jsonl:1: field 'triage': \"later\" is not null or one of emergency, urgent, routine"
    ]
