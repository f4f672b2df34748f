"""Retrieval on the real UCG index and the packaged MiniLM (integration tier)."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.integration

README_QUESTION = "What are the signs of severe malaria in a child?"


def test_readme_example_ranks_severe_malaria_first(ucg_retriever):
    res = ucg_retriever.retrieve(README_QUESTION, k=5)
    assert res.sections[0].section == "2.5.2.2", [(s.section, s.title) for s in res.sections[:5]]
    assert any(h.chunk.section == "2.5.2.2" for h in res.hits)


def test_readme_example_answer_shows_the_sections_own_clinical_features(ucg_retriever):
    """The README's first example: its answer is from §2.5.2.2 (features part), cited, with no other section."""
    from ragcds.generate.answer import answer_question
    from ragcds.generate.backends import load_generator

    a = answer_question(README_QUESTION, generator=load_generator(None, backend="extractive"), retriever=ucg_retriever)
    assert a.policy == "answered" and a.resolved[0]["section"] == "2.5.2.2"
    assert a.text.startswith("Clinical features (§2.5.2.2"), a.text[:200]
    assert {c.section for c in a.citations} == {"2.5.2.2"} and all(c.valid for c in a.citations)
    assert "medical emergency" in a.text and "COVID" not in a.text
    # the README shows the answer's first lines verbatim: they must still be what `ragcds ask` prints
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    shown = readme.split("The last command's answer", 1)[1].split("```\n", 2)[1].split("\n…", 1)[0].splitlines()
    assert a.text.splitlines()[: len(shown)] == shown


def test_issue_8s_artesunate_question_quotes_the_iv_artesunate_table(ucg_retriever):
    """"What is the dose of artesunate for severe malaria in a child?" (issue 8: once quoted the uncomplicated
    malaria AL table): quoted from §2.5.2.2, with the IV artesunate table's child and adult doses (PDF p. 239)."""
    from ragcds.generate.answer import answer_question
    from ragcds.generate.backends import load_generator

    q = "What is the dose of artesunate for severe malaria in a child?"
    a = answer_question(q, generator=load_generator(None, backend="extractive"), retriever=ucg_retriever)
    assert a.policy == "quoted" and a.resolved[0]["section"] == "2.5.2.2"
    assert "Child less than 20 kg: 3 mg/kg" in a.text and "Adults and child >20kg: 2.4 mg/kg" in a.text


def test_lay_words_meet_the_books_words(ucg_retriever):
    res = ucg_retriever.retrieve("child with fits and yellow eyes", k=10)
    text = " ".join(h.chunk.text.lower() for h in res.hits)
    assert "convulsion" in text and "jaundice" in text


def test_numpy_query_vectors_match_the_index_vectors(ucg_index):
    from ragcds.index import store
    from ragcds.index.embedders import load_query_embedder
    from ragcds.index.minilm import NumpyBertEmbedder

    loaded = store.load_index(ucg_index)
    emb = load_query_embedder(loaded.manifest.embedder.ref)
    assert isinstance(emb, NumpyBertEmbedder) and emb.id == loaded.manifest.embedder.id
    rows = random.Random(0).sample(range(len(loaded.chunks)), 40)
    ours = emb.embed([loaded.chunks[i].index_text for i in rows])
    stored = loaded.dense.vectors()[rows]
    cos = (ours * stored).sum(1)
    assert float(1 - cos.min()) < 1e-4


def test_numpy_path_matches_sentence_transformers_float32(real_embedder):
    from ragcds.index.embedders import SentenceTransformerEmbedder, default_model_path, load_query_embedder

    st = SentenceTransformerEmbedder(default_model_path(), precision="float32")
    texts = [README_QUESTION, "fits", "A" * 3000, "Dose of artesunate for a 10 kg child: 2.4 mg/kg IV"]
    a = st.embed(texts)
    b = load_query_embedder("default").embed(texts)
    assert float(np.abs(1 - (a * b).sum(1)).max()) < 1e-5
    assert real_embedder.id == st.id


def test_cli_search_embeds_the_question_without_torch(ucg_index):
    code = (
        "import sys; from typer.testing import CliRunner; from ragcds.cli.main import app; "
        f"r = CliRunner().invoke(app, ['search', {README_QUESTION!r}, '--sections', '--index', {str(ucg_index)!r}]); "
        "assert r.exit_code == 0, r.output; assert '2.5.2.2' in r.output, r.output; "
        "print(','.join(m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == ""
