"""The MedGemma-shaped test model with the real Gemma 3 tokenizer (262,144 tokens, taken from the packaged
Gemma 3 270M GGUF): Gemma's control-token ids in the prompt, xgrammar over the full vocabulary.

Run: pytest -q -m integration tests/test_medgemma_integration.py"""

from __future__ import annotations

import pytest

from ragcds.generate.answer import answer_question
from ragcds.generate.formats import parse_output
from tests import medgemma as mg
from tests.pdfgen import make_guideline_pdf
from tests.test_medgemma import QUESTION, one_torch_thread, runner  # noqa: F401 (autouse fixture)

pytestmark = [pytest.mark.integration, pytest.mark.models]


@pytest.fixture(scope="module")
def real_tokenizer_model(tmp_path_factory):
    pytest.importorskip("xgrammar")
    from transformers import AutoTokenizer

    from ragcds.errors import ModelNotFound
    from ragcds.generate.backends.models import gemma3_270m_path

    root = tmp_path_factory.mktemp("medgemma-real-tok")
    try:
        gguf = gemma3_270m_path(root)
    except ModelNotFound as exc:
        pytest.skip(str(exc))
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)  # about 20 s: merges rebuilt
    if root in gguf.parents:  # assembled here for this test (a shared cache copy is left alone)
        gguf.unlink()
    tok.chat_template = mg.TEMPLATE_FOLDS
    folder = mg.save_folder(mg.tiny_gemma3(tok), tok, root / "tiny-medgemma", mg.TEMPLATE_FOLDS)
    from ragcds.cli.main import app

    index = root / "index"
    res = runner.invoke(app, ["ingest", str(make_guideline_pdf(root / "g.pdf")), "--index", str(index),
                              "--embedder", "fake:64"])
    assert res.exit_code == 0, res.output
    return folder, index


def test_real_gemma3_tokenizer_prompt_and_constrained_packets(real_tokenizer_model, monkeypatch):
    from ragcds.generate.backends import load_generator
    from ragcds.retrieve import HybridRetriever

    folder, index = real_tokenizer_model
    gen = load_generator(str(folder))
    tok = gen.tokenizer
    assert len(tok) == 262144 and tok.convert_tokens_to_ids(["<bos>", "<start_of_turn>", "<end_of_turn>"]) == [
        2, 105, 106]
    assert gen.stop_ids == [1, 106]
    seen: list[list[int]] = []
    real = gen.model.generate
    monkeypatch.setattr(gen.model, "generate", lambda *a, **k: seen.append(k["input_ids"][0].tolist()) or real(*a, **k))
    retriever = HybridRetriever.open(index)
    for fmt in ("xml", "array"):
        a = answer_question(QUESTION, generator=gen, retriever=retriever, format=fmt, k=2, max_new_tokens=768)
        assert a.policy == "answered" and parse_output(a.raw, fmt, a.passages)[1], (fmt, a.raw)
        ids = seen[-1]
        model_turn = tok("<end_of_turn>\n<start_of_turn>model\n", add_special_tokens=False)["input_ids"]
        assert ids[:2] == [2, 105] and ids[-len(model_turn):] == model_turn and ids.count(2) == 1
        assert tok.decode(ids).startswith("<bos><start_of_turn>user\nYou are a clinical decision-support")
