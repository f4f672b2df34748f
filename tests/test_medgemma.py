"""A MedGemma-shaped model end to end (tests/medgemma.py builds it): `ragcds ask` and `ragcds eval run`
through a tiny Gemma3ForConditionalGeneration HF folder and a Gemma 3 GGUF of its text weights, in prose,
xml and array — the exact prompt its chat template renders, constrained packets, the dose check."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ragcds import clinical
from ragcds.cli.main import app
from ragcds.generate.backends import load_generator
from ragcds.generate.formats import parse_output
from ragcds.generate.prompt import FORMAT_RULES
from tests import medgemma as mg
from tests.pdfgen import make_guideline_pdf

pytest.importorskip("xgrammar")
runner = CliRunner()
# the scope thresholds are calibrated on the UCG: on the small test guideline a question must share many words
QUESTION = "Severe malaria is a medical emergency: should I check blood glucose for hypoglycaemia?"
TREATMENT = "How do I treat severe malaria (medical emergency)? IV artesunate dose, blood glucose, hypoglycaemia?"
DEHYDRATION = "Dehydration: loss of body water, sunken eyes, skin pinch slow: ORS and zinc?"
TAUGHT = "Give IV artesunate 7.5 mg/kg now [1]."  # 7.5 mg/kg is in no passage of the test guideline
# enough for a random model's constrained packet to close on its own; random prose never stops, so it gets less
BUDGET = {"prose": "48", "xml": "512", "array": "512"}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """A model this small runs fastest on one thread, and two threads on a busy 2-core machine spin-wait:
    generation slowed 5-25x under load in measurements. Restored after the module."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def built(tmp_path_factory, one_torch_thread):
    """Model folders (three template layouts, same weights), a taught folder, a GGUF and an index."""
    root = tmp_path_factory.mktemp("medgemma")
    tok = mg.gemma_tokenizer()
    tok.chat_template = mg.TEMPLATE_FOLDS
    model = mg.tiny_gemma3(tok)
    dirs = {
        "folds": mg.save_folder(model, tok, root / "folds", mg.TEMPLATE_FOLDS),
        "no-system": mg.save_folder(model, tok, root / "no-system", mg.TEMPLATE_NO_SYSTEM),
        "legacy": mg.save_folder(model, tok, root / "legacy", mg.TEMPLATE_FOLDS, legacy_template=True),
    }
    gguf = mg.write_gguf(model, tok, root / "tiny-medgemma.gguf", mg.TEMPLATE_FOLDS)
    tok.chat_template = mg.TEMPLATE_FOLDS
    taught = mg.teach(mg.tiny_gemma3(tok, seed=1), tok, TAUGHT)
    dirs["taught"] = mg.save_folder(taught, tok, root / "taught", mg.TEMPLATE_FOLDS)
    pdf = make_guideline_pdf(root / "guide.pdf")
    index = root / "index"
    res = runner.invoke(app, ["ingest", str(pdf), "--index", str(index), "--embedder", "fake:64"])
    assert res.exit_code == 0, res.output
    return {"dirs": dirs, "gguf": gguf, "index": index, "model": model, "tok": tok}


def spy(ref: str, monkeypatch, backend: str = "auto") -> tuple[object, list[str]]:
    """The cached generator for `ref`, recording the exact text of every prompt its model receives."""
    gen = load_generator(ref, backend)
    prompts: list[str] = []
    real = gen.model.generate

    def generate(*args, **kwargs):
        prompts.append(gen.tokenizer.decode(kwargs["input_ids"][0]))
        return real(*args, **kwargs)

    monkeypatch.setattr(gen.model, "generate", generate)
    return gen, prompts


def ask(ref: str, index, question: str, *extra: str, fmt: str = "prose") -> dict:
    res = runner.invoke(
        app,
        ["ask", question, "--model", ref, "--index", str(index), "--json", "--no-log", "-k", "2",
         "--format", fmt, "--max-new-tokens", BUDGET[fmt], *extra],
    )
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def split_prompt(prompt: str) -> tuple[str, str]:
    """(system text, user text) of a one-exchange Gemma prompt, checking the layout byte for byte."""
    head, tail = "<bos><start_of_turn>user\n", "<end_of_turn>\n<start_of_turn>model\n"
    assert prompt.startswith(head) and prompt.endswith(tail) and prompt.count("<start_of_turn>") == 2
    system, user = prompt[len(head) : -len(tail)].split("\n\nPassages from the UCG 2023:", 1)
    assert mg.gemma_turns(system, "Passages from the UCG 2023:" + user) == prompt
    return system, "Passages from the UCG 2023:" + user


def test_folder_loads_as_gemma3_for_conditional_generation(built):
    gen = load_generator(str(built["dirs"]["folds"]))
    assert gen.backend == "transformers" and type(gen.model).__name__ == "Gemma3ForConditionalGeneration"
    assert gen.model_type == "gemma3" and gen.supports_system  # the template folds a system message itself
    tok = built["tok"]
    assert gen.stop_ids == sorted({tok.eos_token_id, tok.convert_tokens_to_ids("<end_of_turn>")})
    from ragcds.generate.backends.transformers_backend import logits_size

    assert logits_size(gen.model) == len(tok)  # Gemma3Config has no top-level vocab_size


@pytest.mark.parametrize("fmt", ["prose", "xml", "array"])
def test_ask_renders_the_models_template_and_parses(built, fmt, monkeypatch):
    ref = str(built["dirs"]["folds"])
    _, prompts = spy(ref, monkeypatch)
    data = ask(ref, built["index"], QUESTION, fmt=fmt)
    assert data["backend"] == "transformers" and data["policy"] == "answered" and len(prompts) == 1
    system, user = split_prompt(prompts[0])
    assert system.startswith("You are a clinical decision-support assistant") and FORMAT_RULES[fmt] in system
    assert "[1] §2.2.1.1 Complicated/Severe Malaria, p. " in user and user.endswith(f"Question: {QUESTION}")
    assert data["parse_ok"] and not data["repaired"]
    if fmt != "prose":  # constrained decoding: the model's own reply is a complete packet
        fields, ok, _ = parse_output(data["raw"], fmt, [])
        assert ok and set(fields) == {"level", "condition", "confidence", "actions", "next_steps", "red_flags"}
        assert data["fields"] == fields
    assert ungrounded_doses(data) == []


def ungrounded_doses(data: dict) -> list[str]:
    """Doses in the shown answer that no passage carries (the dose check must leave none)."""
    return clinical.check_doses(data["answer"], [p["text"] for p in data["passages"]])[1]


def test_templates_without_a_system_role_give_the_same_prompt(built, monkeypatch):
    texts = {}
    for layout in ("folds", "no-system", "legacy"):
        ref = str(built["dirs"][layout])
        gen, prompts = spy(ref, monkeypatch)
        ask(ref, built["index"], QUESTION)
        texts[layout] = prompts[0]
        assert gen.supports_system is (layout != "no-system")
    assert texts["folds"] == texts["no-system"] == texts["legacy"]
    split_prompt(texts["no-system"])


def test_invented_dose_is_removed_and_treatment_is_quoted(built, monkeypatch):
    ref = str(built["dirs"]["taught"])
    data = ask(ref, built["index"], TREATMENT)
    assert data["raw"].startswith("Give IV artesunate 7.5 mg/kg")  # what the model wrote
    assert "7.5 mg/kg" not in data["answer"] and "dose removed" in data["answer"]
    assert any("7.5 mg/kg" in n for n in data["notes"])
    assert data["policy"] == "quoted" and "2.4 mg/kg" in data["quote"]  # the guideline's text, verbatim
    closed = ask(ref, built["index"], TREATMENT, "--no-rag")
    assert "7.5 mg/kg" in closed["raw"] and not clinical.parse_doses(closed["answer"])


@pytest.mark.parametrize("fmt", ["prose", "xml", "array"])
def test_eval_run_through_the_model(built, fmt, tmp_path):
    qfile = tmp_path / "qs.jsonl"
    rows = [
        {"id": "m1", "question": QUESTION, "kind": "fact", "gold_pages": [5], "gold_section": "2.2.1.1",
         "gold_title": "Complicated/Severe Malaria", "key_facts": [["convulsions"]], "triage": None},
        {"id": "d1", "question": DEHYDRATION, "kind": "vignette", "gold_pages": [3], "gold_section": "1.1.2",
         "gold_title": "Dehydration", "key_facts": [["ORS"]], "triage": "urgent"},
    ]
    qfile.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    ref = str(built["dirs"]["folds"])
    res = runner.invoke(
        app,
        ["eval", "run", "-q", str(qfile), "--model", ref, "--index", str(built["index"]), "--format", fmt,
         "--modes", "closed-book,rag", "--out", str(out), "--max-new-tokens", BUDGET[fmt], "-k", "2",
         "--no-progress"],
    )
    assert res.exit_code == 0, res.output
    items = [json.loads(x) for x in (out / "items.jsonl").read_text().splitlines()]
    assert [(i["id"], i["mode"]) for i in items] == [("m1", "closed-book"), ("m1", "rag"), ("d1", "closed-book"),
                                                     ("d1", "rag")]
    for it in items:
        assert "error" not in it and it["answer"]["backend"] == "transformers" and it["answer"]["parse_ok"]
        if fmt != "prose" and it["answer"]["policy"] == "answered":
            assert parse_output(it["answer"]["raw"] or it["answer"]["answer"], fmt, [])[1]
    assert (out / "report.md").is_file() and json.loads((out / "results.json").read_text())["errors"]["rag"] == 0


def test_gguf_of_the_text_weights_through_transformers(built, monkeypatch):
    import torch

    ref = str(built["gguf"])
    gen, prompts = spy(ref, monkeypatch, backend="transformers")
    assert type(gen.model).__name__ == "Gemma3ForCausalLM" and gen.model_type == "gemma3_text"
    assert gen.tokenizer.chat_template == mg.TEMPLATE_FOLDS and gen.stop_ids == load_generator(
        str(built["dirs"]["folds"])).stop_ids
    text = mg.gemma_turns("Rules [1].", "Question: fever and 2.4 mg/kg? §2.2 – ok")
    ids = gen.tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    assert ids.tolist() == built["tok"](text, add_special_tokens=False, return_tensors="pt")["input_ids"].tolist()
    with torch.inference_mode():  # the GGUF holds the same decoder as the HF folder
        expect = built["model"](input_ids=ids).logits
        assert torch.allclose(gen.model(input_ids=ids).logits, expect, atol=1e-4)
    folder_prompts = spy(str(built["dirs"]["folds"]), monkeypatch)[1]
    ask(str(built["dirs"]["folds"]), built["index"], QUESTION, fmt="array")
    data = ask(ref, built["index"], QUESTION, "--backend", "transformers", fmt="array")
    assert prompts == folder_prompts and parse_output(data["raw"], "array", [])[1] and data["parse_ok"]


def test_model_class_for_a_folder(built, monkeypatch, tmp_path):
    import transformers
    from transformers.models.auto import modeling_auto

    from ragcds.errors import ModelNotFound
    from ragcds.generate.backends.transformers_backend import model_class

    folder = built["dirs"]["folds"]
    assert model_class(transformers, folder) is transformers.AutoModelForCausalLM
    assert model_class(transformers, None) is transformers.AutoModelForCausalLM  # a GGUF
    # a transformers that does not map gemma3 to a causal LM (as before 5.x): image-text-to-text instead
    names = {k: v for k, v in modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.items() if k != "gemma3"}
    monkeypatch.setattr(modeling_auto, "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES", names)
    cls = model_class(transformers, folder)
    assert cls is transformers.AutoModelForImageTextToText
    assert type(cls.from_pretrained(str(folder))).__name__ == "Gemma3ForConditionalGeneration"
    transformers.ViTConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=1).save_pretrained(tmp_path)
    with pytest.raises(ModelNotFound, match="neither a causal LM nor an image-text-to-text model"):
        model_class(transformers, tmp_path)
