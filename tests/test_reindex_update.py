"""`index update`: only changed chunks are embedded, the new version holds exactly the new chunks, counts,
history/activation records, versions listing, rollback and gc."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragcds.cli.main import app
from ragcds.config import Settings
from ragcds.errors import CorruptIndex, IndexNotFound
from ragcds.index import store, versions
from ragcds.index.build import build_index
from ragcds.index.diff import classify_changes
from ragcds.index.update import update_index
from ragcds.ingest.chunk import Chunk
from ragcds.ingest.pipeline import parse_pdf
from tests.fakes import FakeEmbedder
from tests.reindex_cli_helper import make_editions


@pytest.fixture(scope="module")
def editions(tmp_path_factory) -> tuple[Path, Path]:
    return make_editions(tmp_path_factory.mktemp("editions"))


@pytest.fixture
def live(tmp_path, editions) -> Path:
    index_dir = tmp_path / "index"
    build_index(editions[0], index_dir, FakeEmbedder(64), "fake:64")
    return index_dir


def test_update_embeds_only_changed_chunks_and_drops_removed(live, editions):
    old_vid = store.current_version(live)
    emb = FakeEmbedder(64)
    rep = update_index(editions[1], live, emb, "fake:64")
    c = rep.counts
    assert (c.changed, c.added, c.removed) == (1, 1, 1)
    assert c.unchanged + c.moved + c.changed + c.added == rep.build.chunks
    assert set(c.changed_sections) == {"2.1.1", "1.2.1", "2.1.4"}
    # only the changed Anthrax chunk and the new Plague chunk went to the embedder (one call); the other
    # call embeds the section titles of the retrieval self-test (queries, not chunks)
    assert emb.calls[0] == rep.build.embedded + rep.build.units_embedded  # chunks and their section units
    assert rep.build.embedded == c.changed + c.added == 2
    queried = int(rep.gates.results[-1].value.split("/")[1].split()[0])
    assert len(emb.calls) == 2 and queried <= emb.calls[1] <= 2 * queried  # titles, and lexicon-expanded titles
    assert rep.activated and rep.gates.passed and rep.previous_version == old_vid
    assert store.current_version(live) == rep.new_version != old_vid
    # the new version holds exactly the new edition's chunks: none duplicated, removed ones gone
    loaded = store.load_index(live)
    ids = [ch.chunk_id for ch in loaded.chunks]
    expected = [ch.chunk_id for ch in parse_pdf(editions[1], Settings()).chunks]
    assert ids == expected and max(Counter(ids).values()) == 1
    assert loaded.dense.size == len(ids)
    assert not any(ch.section == "1.2.1" for ch in loaded.chunks)
    assert any("750 mg" in ch.text for ch in loaded.chunks) and not any(
        "500 mg" in ch.text for ch in loaded.chunks
    )
    # decisions are recorded with the version and in the history log
    rec = versions.read_activation(loaded.path)
    assert rec["status"] == "live-candidate" and rec["gates"]["passed"] and not rec["forced"]
    hist = versions.read_history(live)
    assert hist[-1]["event"] == "update" and hist[-1]["from"] == old_vid and hist[-1]["to"] == rep.new_version


def test_update_with_the_same_pdf_embeds_nothing(live, editions):
    emb = FakeEmbedder(64)
    rep = update_index(editions[0], live, emb, "fake:64")
    assert len(emb.calls) == 1  # only the self-test queries: no chunk was embedded
    assert rep.build.embedded == 0 and rep.build.reused == rep.build.chunks
    assert (rep.counts.changed, rep.counts.added, rep.counts.removed) == (0, 0, 0)
    assert rep.counts.unchanged == rep.build.chunks


def test_update_on_empty_index_builds_the_first_version(tmp_path, editions):
    rep = update_index(editions[0], tmp_path / "fresh", FakeEmbedder(64), "fake:64")
    assert rep.activated and rep.previous_version is None and rep.counts.added == rep.build.chunks


def _chunk(cid: str, section: str, text: str, pages: tuple[int, ...] = (1,)) -> Chunk:
    return Chunk(cid, section, f"T{section}", (f"{section} T",), "", pages, tuple(map(str, pages)), text)


def test_classify_changes_definitions():
    old = [
        _chunk("a", "1.1", "same"),
        _chunk("b", "1.2", "dose 5 mg"),
        _chunk("c", "1.2", "extra"),
        _chunk("d", "1.3", "gone"),
        _chunk("e", "1.4", "shifted", (3,)),
    ]
    new = [
        _chunk("a", "1.1", "same"),
        _chunk("b2", "1.2", "dose 10 mg"),
        _chunk("f", "1.5", "new"),
        _chunk("e2", "1.4", "shifted", (4,)),
    ]
    c = classify_changes(old, new)
    assert (c.unchanged, c.moved, c.changed, c.added, c.removed) == (1, 1, 1, 1, 2)
    assert c.changed_sections == ["1.2", "1.3", "1.5"]


def test_versions_activate_rollback_and_gc(live, editions):
    first = store.current_version(live)
    second = update_index(editions[1], live, FakeEmbedder(64), "fake:64").new_version
    rows = versions.version_rows(live)
    assert [r["version_id"] for r in rows] == [first, second]
    assert (
        [r["live"] for r in rows] == [False, True]
        and rows[1]["gates"] == "passed"
        and rows[0]["gates"] == "-"
    )
    versions.activate(live, first)  # rollback
    assert store.current_version(live) == first
    assert versions.read_history(live)[-1] == {**versions.read_history(live)[-1], "from": second, "to": first}
    (live / "versions" / "20000101T000000-broken").mkdir()  # a version folder without manifest
    with pytest.raises(CorruptIndex):
        versions.activate(live, "20000101T000000-broken")
    with pytest.raises(IndexNotFound):
        versions.activate(live, "nope")
    (live / "versions" / ".tmp-leftover").mkdir()
    res = versions.gc(live, keep=1)  # keeps the newest (second) and the live one (first)
    assert (
        res["removed"] == []
        and res["temps_removed"] == 1
        and res["incomplete_removed"] == ["20000101T000000-broken"]
    )
    versions.activate(live, second)
    res = versions.gc(live, keep=1)
    assert res["removed"] == [first] and store.current_version(live) == second
    store.load_index(live)


def test_cli_update_versions_activate_gc(live, editions):
    runner = CliRunner()
    first = store.current_version(live)
    res = runner.invoke(
        app, ["index", "update", str(editions[1]), "--index", str(live), "--embedder", "fake:64", "--json"]
    )
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["counts"]["changed"] == 1 and rep["embedded"] == 2 and rep["activated"]
    res = runner.invoke(app, ["index", "versions", "--index", str(live), "--json"])
    rows = json.loads(res.stdout)
    assert [r["live"] for r in rows] == [False, True]
    res = runner.invoke(app, ["index", "versions", "--index", str(live)])
    assert res.exit_code == 0 and "live" in res.stdout and rep["new_version"] in res.stdout
    res = runner.invoke(app, ["index", "activate", first, "--index", str(live)])
    assert res.exit_code == 0 and store.current_version(live) == first
    res = runner.invoke(app, ["index", "activate", "missing-id", "--index", str(live)])
    assert res.exit_code == 1 and "ragcds index versions" in res.stderr
    res = runner.invoke(app, ["index", "gc", "--keep", "1", "--index", str(live), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["removed"] == []  # live (first) and newest kept


def test_page_text_cache_reuses_unchanged_pages_and_matches_the_reference_reader(tmp_path, editions):
    from ragcds.ingest.pagecache import PAGE_CACHE, CachedPageReader
    from ragcds.ingest.pdf import read_pdf

    index_dir = tmp_path / "index"
    first = CachedPageReader(index_dir)
    pages = first(editions[0])
    assert first.misses == len(pages) and first.hits == 0 and (index_dir / PAGE_CACHE).exists()
    again = CachedPageReader(index_dir)
    assert again(editions[0]) == pages and again.hits == len(pages) and again.misses == 0
    second = CachedPageReader(index_dir)
    pages2 = second(editions[1])
    assert second.hits >= 1 and second.misses >= 1  # the cover page is shared, edited pages are re-read
    assert pages2 == read_pdf(editions[1]) and pages == read_pdf(editions[0])
    rep = update_index(editions[1], index_dir, FakeEmbedder(64), "fake:64")
    assert rep.page_cache == {"hits": len(pages2), "misses": 0}
