"""Extractive evaluation of 10 dev questions on the real UCG index (integration tier)."""

from __future__ import annotations

import json

import pytest

from ragcds.evaluate.dataset import load_questions
from ragcds.evaluate.runner import RunConfig, read_items, run_eval
from ragcds.files import sha256_file

pytestmark = pytest.mark.integration


def test_extractive_eval_on_dev_subset(tmp_path, dev_set, ucg_retriever):
    from ragcds.generate.backends import load_generator

    qs = load_questions(dev_set, limit=10)
    cfg = RunConfig(
        questions=str(dev_set),
        questions_sha256=sha256_file(dev_set),
        modes=("extractive",),
        index_version=ucg_retriever.index.version_id,
        limit=10,
    )
    res = run_eval(cfg, qs, ucg_retriever, tmp_path, lambda mode: load_generator(None), progress=None)
    items = read_items(tmp_path / "items.jsonl")
    assert len(items) == 10 and not any(it.get("error") for it in items)
    assert res["retrieval"]["overall"]["recall@10"]["mean"] >= 0.7
    ext = res["modes"]["extractive"]
    assert ext["key_fact_recall"]["mean"] > 0.2
    assert ext["citation_validity"]["mean"] == 1.0
    assert ext["unsupported_rate"]["mean"] <= 0.1  # verbatim sentences are supported by construction
    assert ext["has_number_error"]["mean"] == 0.0
    assert json.loads((tmp_path / "results.json").read_text())["n_questions"] == 10
    assert (tmp_path / "report.md").exists() and (tmp_path / "metrics_by_mode.png").exists()
