"""The `ingest` and `search` commands end to end (fake embedder, generated PDF)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ragcds.cli.main import app
from tests.pdfgen import make_guideline_pdf

runner = CliRunner()
HIT_KEYS = {"rank", "chunk_id", "section", "title", "pdf_pages", "printed_pages", "score", "text"}


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    pdf = make_guideline_pdf(root / "guide.pdf")
    out = root / "index"
    result = runner.invoke(app, ["ingest", str(pdf), "--index", str(out), "--embedder", "fake:64"])
    assert result.exit_code == 0, result.output
    assert "contents coverage" in result.stderr and "ragcds search" in result.stderr.strip().splitlines()[-1]
    return out


def test_ingest_json_report(tmp_path):
    pdf = make_guideline_pdf(tmp_path / "g.pdf")
    result = runner.invoke(app, ["ingest", str(pdf), "--index", str(tmp_path / "i"), "--embedder", "fake:64",
                                 "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["pages"] == 8 and report["toc_coverage"] == 1.0 and report["chunks"] > 10
    assert set(report["stage_seconds"]) >= {"read", "structure", "chunk", "embed", "bm25", "write"}


def test_search_json_has_exactly_the_documented_keys(index_dir):
    result = runner.invoke(app, ["search", "artesunate severe malaria", "--json", "-k", "3", "--index", str(index_dir)])
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)
    assert len(hits) == 3 and all(set(h) == HIT_KEYS for h in hits)
    assert [h["rank"] for h in hits] == [1, 2, 3]
    assert all(isinstance(p, int) for h in hits for p in h["pdf_pages"])
    assert all(isinstance(p, str) for h in hits for p in h["printed_pages"])


def test_search_human_output_shows_citations(index_dir):
    result = runner.invoke(app, ["search", "antivenom for snakebite", "--index", str(index_dir), "--mode", "bm25"])
    assert result.exit_code == 0, result.output
    assert "§1.2.1 Snakebites, p. " in result.stdout


def test_batch_search_prints_one_json_object_per_line(index_dir, tmp_path):
    qfile = tmp_path / "q.jsonl"
    qfile.write_text('{"id": "a", "question": "zinc for dehydration"}\n\n{"id": "b", "question": "anthrax"}\n')
    result = runner.invoke(app, ["search", "--questions", str(qfile), "--json", "--index", str(index_dir)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in rows] == ["a", "b"] and all(len(r["hits"]) == 5 for r in rows)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["search", "   "], "question is empty"),
        (["search", "malaria", "--index", "{tmp}/none"], "ragcds ingest"),
        (["ingest", "{tmp}/missing.pdf", "--index", "{tmp}/i"], "PDF not found"),
        (["ingest", "{tmp}/notes.txt", "--index", "{tmp}/i"], "not a PDF"),
        (["search", "--questions", "{tmp}/bad.jsonl", "--index", "{index}"], "bad.jsonl:1"),
    ],
)
def test_errors_are_one_line_with_exit_1(args, needle, tmp_path, index_dir, monkeypatch):
    monkeypatch.setenv("RAGCDS_DEBUG", "0")
    (tmp_path / "notes.txt").write_text("plain text")
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    args = [a.format(tmp=tmp_path, index=index_dir) for a in args]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0]
    assert not (tmp_path / "i").exists() or not list((tmp_path / "i").glob("versions/*"))


def test_ingest_without_pdf_uses_env_or_explains(monkeypatch, tmp_path):
    monkeypatch.delenv("UCG_PDF", raising=False)
    result = runner.invoke(app, ["ingest", "--index", str(tmp_path / "i")])
    assert result.exit_code == 1 and "UCG_PDF" in result.stderr


SECTION_KEYS = {"rank", "section", "title", "printed_pages", "score", "best_rank"}


def test_search_sections_lists_ranked_sections(index_dir, tmp_path):
    result = runner.invoke(app, ["search", "artesunate severe malaria", "--sections", "--json", "-k", "3",
                                 "--index", str(index_dir)])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert 1 <= len(rows) <= 3 and all(set(r) == SECTION_KEYS for r in rows)
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    assert all(a["score"] >= b["score"] for a, b in zip(rows, rows[1:], strict=False))
    human = runner.invoke(app, ["search", "artesunate severe malaria", "--sections", "--index", str(index_dir)])
    assert human.exit_code == 0 and f"§{rows[0]['section']} {rows[0]['title']}" in human.stdout
    qfile = tmp_path / "q.jsonl"
    qfile.write_text('{"id": "a", "question": "artesunate"}\n{"id": "b", "question": "snakebite"}\n')
    batch = runner.invoke(app, ["search", "--questions", str(qfile), "--sections", "--json", "--index", str(index_dir)])
    lines = [json.loads(x) for x in batch.stdout.splitlines()]
    assert [x["id"] for x in lines] == ["a", "b"] and all(set(x) == {"id", "sections"} for x in lines)
