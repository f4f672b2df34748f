"""Index build, persistence, atomicity and retrieval, on a generated PDF with the hashing fake embedder."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from ragcds.errors import CorruptIndex, IndexNotFound, StaleIndex
from ragcds.index import store
from ragcds.index.build import build_index
from ragcds.index.embedders import register_embedder
from ragcds.index.lexical import LexicalIndex, tokenize
from ragcds.ingest.chunk import chunk_sections
from ragcds.retrieve import HybridRetriever, rrf, top_k
from tests.fakes import FakeEmbedder
from tests.pdfgen import make_guideline_pdf


@pytest.fixture(scope="module")
def pdf(tmp_path_factory) -> Path:
    return make_guideline_pdf(tmp_path_factory.mktemp("pdf") / "guide.pdf")


@pytest.fixture
def built(tmp_path, pdf):
    emb = FakeEmbedder(64)
    index_dir = tmp_path / "index"
    report = build_index(pdf, index_dir, emb, "fake:64")
    return index_dir, emb, report


def test_build_writes_inspectable_files_and_manifest(built, pdf):
    index_dir, emb, report = built
    vdir = store.resolve_version_dir(index_dir)
    names = {p.relative_to(vdir).as_posix() for p in vdir.rglob("*") if p.is_file()}
    assert {"manifest.json", "chunks.jsonl", "pages.jsonl", "structure.json", "dense.faiss"} <= names
    assert not any(n.endswith((".pkl", ".pickle")) for n in names)
    for npy in vdir.glob("bm25/*.npy"):
        np.load(npy, allow_pickle=False)  # plain arrays, no pickled objects
    m = json.loads((vdir / "manifest.json").read_text())
    assert m["embedder"] == {"id": emb.id, "ref": "fake:64", "dim": 64}
    assert m["source"]["pages"] == report.pages and len(m["source"]["sha256"]) == 64
    assert m["chunker"]["target_words"] > 0 and m["ragcds_version"] and m["built_at"]
    assert m["chunk_count"] == report.chunks == sum(1 for _ in (vdir / "chunks.jsonl").open())
    assert (index_dir / "CURRENT").read_text().strip() == m["version_id"]


def test_faiss_matches_brute_force_numpy(built):
    index_dir, emb, _ = built
    idx = store.load_index(index_dir)
    vecs = idx.dense.vectors()
    queries = emb.embed(["severe malaria artesunate", "dehydration ORS zinc", "snake antivenom"])
    scores, ids = idx.dense.search(queries, 5)
    brute = queries @ vecs.T
    for qi in range(len(queries)):
        expected = np.sort(brute[qi])[::-1][:5]
        assert np.allclose(scores[qi], expected, atol=1e-5)
        assert np.allclose(brute[qi][ids[qi]], scores[qi], atol=1e-5)


def _bm25_oracle(docs: list[list[str]], query: list[str], k1=1.5, b=0.75) -> np.ndarray:
    """Lucene's BM25 written out from the formula (Lucene drops the constant (k1 + 1) numerator factor)."""
    n = len(docs)
    avgdl = sum(map(len, docs)) / n
    df = Counter(t for d in docs for t in set(d))
    out = np.zeros(n)
    for i, d in enumerate(docs):
        tf = Counter(d)
        for t in query:
            if t in tf:
                idf = math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5))
                out[i] += idf * tf[t] / (tf[t] + k1 * (1 - b + b * len(d) / avgdl))
    return out


def test_bm25_matches_independent_formula():
    texts = ["severe malaria give artesunate 2.4 mg/kg", "uncomplicated malaria artemether lumefantrine",
             "dehydration give ORS and zinc 20 mg", "malaria malaria prevention with nets", "snakebite antivenom"]
    lex = LexicalIndex.build(texts)
    for q in ["severe malaria artesunate", "zinc 20 mg", "malaria"]:
        expected = _bm25_oracle([tokenize(t) for t in texts], [t for t in tokenize(q)])
        assert np.allclose(lex.scores(q), expected, rtol=1e-4, atol=1e-5)


def test_tokenizer_keeps_numbers_whole():
    assert tokenize("Artesunate 2.4 mg/kg at 0, 12 and 24 hours") == ["artesun", "2.4", "mg", "kg", "0", "12",
                                                                      "24", "hour"]


def test_rrf_is_reciprocal_rank_sum():
    scores = rrf([[3, 1, 2], [1, 4]], k=60)
    assert scores[1] == pytest.approx(1 / 62 + 1 / 61)
    assert scores[4] == pytest.approx(1 / 62)
    assert [d for d, _ in top_k(scores, 2)] == [1, 3]
    weighted = rrf([[3], [4]], k=0, weights=[2.0, 1.0])
    assert weighted == {3: 2.0, 4: 1.0}


def test_hybrid_search_ranks_the_right_section(built):
    index_dir, emb, _ = built
    r = HybridRetriever.open(index_dir, emb)
    for mode in ("hybrid", "dense", "bm25"):
        hits = r.search("IV artesunate at 0, 12 and 24 hours for complicated severe malaria", k=3, mode=mode)
        assert hits[0].chunk.section == "2.2.1.1", mode
        assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert r.search("ciprofloxacin anthrax", k=1, mode="bm25")[0].chunk.section == "2.1.1"


def test_atomic_write_failed_chunker_leaves_old_index_answering(built, pdf):
    index_dir, emb, _ = built
    before = (index_dir / "CURRENT").read_text()
    calls = {"n": 0}

    def exploding_chunker(sections, labels, settings):
        chunks = []
        for i, s in enumerate(sections):
            if i == len(sections) // 2:
                calls["n"] += 1
                raise RuntimeError("chunker crashed halfway")
            chunks += chunk_sections([s], labels, settings)
        return chunks

    with pytest.raises(RuntimeError):
        build_index(pdf, index_dir, emb, "fake:64", chunker=exploding_chunker)
    assert calls["n"] == 1
    assert (index_dir / "CURRENT").read_text() == before
    assert not list((index_dir / "versions").glob(".tmp-*"))
    hits = HybridRetriever.open(index_dir, emb).search("snakebite antivenom", k=1)
    assert hits[0].chunk.section == "1.2.1"


def test_failure_while_writing_files_leaves_no_partial_version(built, pdf, monkeypatch):
    index_dir, emb, _ = built
    versions_before = sorted(p.name for p in (index_dir / "versions").iterdir())

    def boom(self, path):
        raise OSError("disk full")

    monkeypatch.setattr("ragcds.index.lexical.LexicalIndex.save", boom)
    with pytest.raises(OSError):
        build_index(pdf, index_dir, FakeEmbedder(64, salt="other"), "fake:64")
    assert sorted(p.name for p in (index_dir / "versions").iterdir()) == versions_before
    assert store.load_index(index_dir).chunks


def test_rebuild_reuses_vectors_of_unchanged_chunks(built, pdf):
    index_dir, _, report = built
    emb2 = FakeEmbedder(64)
    again = build_index(pdf, index_dir, emb2, "fake:64")
    assert again.reused == report.chunks and again.embedded == 0 and emb2.embedded_texts == 0


def test_missing_and_stale_index_errors(tmp_path, built):
    with pytest.raises(IndexNotFound, match="ragcds ingest"):
        store.load_index(tmp_path / "nowhere")
    index_dir, _, _ = built
    with pytest.raises(StaleIndex, match="rebuild"):
        HybridRetriever.open(index_dir, FakeEmbedder(64, salt="new-weights"))
    register_embedder("fake", lambda arg: FakeEmbedder(int(arg or 64), salt="upgraded"))  # undone by conftest
    with pytest.raises(StaleIndex):
        HybridRetriever.open(index_dir)  # the manifest's embedder ref now yields different vectors


def test_index_built_with_another_bm25_tokenizer_is_refused(built):
    index_dir, _, _ = built
    vdir = store.resolve_version_dir(index_dir)
    manifest = json.loads((vdir / "manifest.json").read_text())
    manifest["lexical"]["tokenizer"] = "ragcds-bm25-tok-v0"
    (vdir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StaleIndex, match=r"BM25 tokenizer ragcds-bm25-tok-v0.*rebuild it: ragcds ingest PDF"):
        store.load_index(index_dir)


def test_corrupt_version_is_refused(built):
    index_dir, _, _ = built
    vdir = store.resolve_version_dir(index_dir)
    lines = (vdir / "chunks.jsonl").read_text().splitlines()
    (vdir / "chunks.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(CorruptIndex, match="rebuild"):
        store.load_index(index_dir)


def test_llamaindex_retriever_in_a_query_engine(built):
    from llama_index.core.llms import MockLLM
    from llama_index.core.query_engine import RetrieverQueryEngine

    from ragcds.integrations.llamaindex import UCGRetriever

    index_dir, emb, _ = built
    retriever = UCGRetriever(HybridRetriever.open(index_dir, emb), k=2)
    nodes = retriever.retrieve("artesunate complicated severe malaria")
    assert nodes[0].node.metadata["section"] == "2.2.1.1"
    assert nodes[0].node.metadata["citation"].startswith("§2.2.1.1 Complicated/Severe Malaria, p.")
    engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM(max_tokens=8))
    response = engine.query("artesunate complicated severe malaria")
    assert [n.node.node_id for n in response.source_nodes] == [n.node.node_id for n in nodes]


def test_question_is_embedded_once_across_modes(built):
    index_dir, _, _ = built
    emb = FakeEmbedder(64)
    r = HybridRetriever.open(index_dir, emb)
    first = r.search("zinc for dehydration", k=3, mode="hybrid")
    r.search("zinc for dehydration", k=3, mode="dense")
    r.search_many(["zinc for dehydration", "antivenom"], k=3, mode="dense")
    assert emb.calls == [1, 1]  # the repeated question reused its vector; only "antivenom" was new
    assert [h.chunk.chunk_id for h in r.search("zinc for dehydration", k=3)] == [h.chunk.chunk_id for h in first]


def test_a_rebuild_with_the_same_id_replaces_a_copy_whose_manifest_was_edited(built, tmp_path):
    """Same content built in the same second gets the same id: an intact copy is kept, but one whose manifest
    was edited (another format) is set aside and the new build placed."""
    import shutil

    live = store.resolve_version_dir(built[0])
    final = tmp_path / "versions" / live.name
    shutil.copytree(live, final)
    fresh = tmp_path / "versions" / ".tmp-new"
    shutil.copytree(live, fresh)
    store._place(fresh, final)  # an intact copy of the same version: kept
    assert not fresh.exists() and not list(final.parent.glob(".damaged-*"))
    data = json.loads((final / store.MANIFEST).read_text())
    (final / store.MANIFEST).write_text(json.dumps({**data, "format_version": 99}))
    shutil.copytree(live, fresh)
    store._place(fresh, final)
    assert json.loads((final / store.MANIFEST).read_text())["format_version"] == data["format_version"]
    assert len(list(final.parent.glob(".damaged-*"))) == 1
