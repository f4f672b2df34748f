"""`ragcds ask` / `ragcds logs` end to end with a fake generator (registered like any backend) and a fake
retriever; checks the exact messages the generator received."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ragcds.cli.main import app
from ragcds.generate.answer import answer_question
from ragcds.generate.backends import register_backend
from ragcds.ingest.chunk import Chunk
from ragcds.retrieve import HybridRetriever
from tests.fakes import FakeGenerator, FakeSource

runner = CliRunner()
CHUNKS = [
    Chunk(
        "c1",
        "2.5.2.2",
        "Complicated/Severe Malaria",
        ("Malaria",),
        "",
        (120,),
        ("100",),
        "Convulsions, coma and prostration are danger signs of severe malaria.",
    ),
    Chunk(
        "c2",
        "2.5.2.2",
        "Complicated/Severe Malaria",
        ("Malaria",),
        "Management",
        (121,),
        ("101",),
        "Management\n- Give IV artesunate 2.4 mg/kg at 0, 12 and 24 hours\n- Refer urgently",
    ),
]


def FakeRetriever(top_dense: float = 0.8) -> FakeSource:  # noqa: N802 - a factory named like the old class
    return FakeSource(CHUNKS, top_dense=top_dense)


class GemmaLikeGenerator(FakeGenerator):
    supports_system = False


@pytest.fixture
def fake(monkeypatch):
    gen = FakeGenerator(["Severe malaria shows convulsions and coma [1]. See also [7]."])
    register_backend("fake", lambda ref, **o: gen)
    retriever = FakeRetriever()
    monkeypatch.setattr(HybridRetriever, "open", classmethod(lambda cls, *a, **k: retriever))
    return gen


def test_ask_sends_cited_passages_and_flags_invalid_citation(fake, ragcds_home):
    res = runner.invoke(app, ["ask", "What are the danger signs of severe malaria?", "--backend", "fake"])
    assert res.exit_code == 0, res.output
    msgs = fake.requests[0].messages
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert "[1] §2.5.2.2 Complicated/Severe Malaria, p. 100\nBEGIN [1]\nConvulsions" in msgs[1]["content"]
    assert "\n[2] p. 101\nBEGIN [2]\n" in msgs[1]["content"]  # the same section: named once
    assert "Question: What are the danger signs of severe malaria?" in msgs[1]["content"]
    assert "Sources:" in res.output and "[1] §2.5.2.2 Complicated/Severe Malaria, p. 100" in res.output
    assert "[7] INVALID: no passage 7 was provided" in res.output
    assert (ragcds_home / "logs.db").exists()


def test_no_system_role_for_gemma_style_templates(monkeypatch):
    gen = GemmaLikeGenerator(["ok [1]"])
    register_backend("fake-gemma", lambda ref, **o: gen)
    monkeypatch.setattr(HybridRetriever, "open", classmethod(lambda cls, *a, **k: FakeRetriever()))
    res = runner.invoke(
        app, ["ask", "danger signs of severe malaria?", "--backend", "fake-gemma", "--no-log"]
    )
    assert res.exit_code == 0, res.output
    msgs = gen.requests[0].messages
    assert [m["role"] for m in msgs] == ["user"]
    assert msgs[0]["content"].startswith("You are a clinical") and "[1] §2.5.2.2" in msgs[0]["content"]


def test_no_rag_really_omits_passages(fake, ragcds_home):
    res = runner.invoke(
        app,
        [
            "ask",
            "What are the danger signs of severe malaria?",
            "--backend",
            "fake",
            "--no-rag",
            "--json",
            "--no-log",
        ],
    )
    assert res.exit_code == 0, res.output
    text = json.dumps(fake.requests[0].messages)
    assert "§" not in text and "Convulsions, coma" not in text and fake.requests[0].passages == ()
    data = json.loads(res.output)
    assert data["mode"] == "closed-book" and data["passages"] == []
    assert all(not c["valid"] for c in data["citations"])
    assert not (ragcds_home / "logs.db").exists()


def test_json_output_shape(fake):
    res = runner.invoke(
        app, ["ask", "What are the danger signs of severe malaria?", "--backend", "fake", "--json"]
    )
    data = json.loads(res.output)
    assert set(data) >= {
        "answer",
        "fields",
        "citations",
        "passages",
        "model",
        "backend",
        "mode",
        "policy",
        "timings",
    }
    assert set(data["passages"][0]) == {
        "rank",
        "chunk_id",
        "section",
        "title",
        "pdf_pages",
        "printed_pages",
        "score",
        "text",
    }
    assert data["citations"][0]["valid"] and data["citations"][0]["printed_pages"] == ["100"]
    assert (
        data["backend"] == "fake"
        and data["mode"] == "rag"
        and {"retrieve", "generate"} <= set(data["timings"])
    )


def test_treatment_question_quotes_and_never_shows_generated_dose(monkeypatch):
    gen = FakeGenerator(["Give artesunate 2.4 mg/kg [1] and then 600 mg quinine [1]."])
    register_backend("fake-dose", lambda ref, **o: gen)
    answer = answer_question(
        "How should I treat severe malaria, which dose?", generator=gen, retriever=FakeRetriever()
    )  # type: ignore[arg-type]
    assert answer.policy == "quoted" and "600 mg" not in answer.text and "2.4 mg/kg" in answer.text
    assert "> Give IV artesunate 2.4 mg/kg at 0, 12 and 24 hours [1]" in answer.quote
    assert any(c.quoted and c.section == "2.5.2.2" for c in answer.citations)
    assert "Give no treatment or doses yourself" in gen.requests[0].messages[0]["content"]
    refused = answer_question(
        "Which dose of artesunate for severe malaria?",
        generator=gen,
        retriever=FakeRetriever(),  # type: ignore[arg-type]
        policy="refuse",
    )
    assert refused.policy == "refused" and "§2.5.2.2" in refused.text and len(gen.requests) == 1


def test_out_of_scope_answer_does_not_call_the_model():
    gen = FakeGenerator()
    answer = answer_question(
        "How do I renew my practising licence?", generator=gen, retriever=FakeRetriever(top_dense=0.3)
    )  # type: ignore[arg-type]
    assert (
        answer.policy == "out_of_scope"
        and "not covered by the Uganda Clinical Guidelines 2023" in answer.text
        and "licence" in answer.text  # the word the guideline never uses is named as typed
    )
    assert gen.requests == []
    # a presentation the book does not cover gets no "Triage: routine" (it would read as clearance) ...
    calm = answer_question("A 30-year-old woman has rosacea on her cheeks. How do I renew my practising licence?",
                           generator=gen, retriever=FakeRetriever(top_dense=0.3))  # type: ignore[arg-type]
    assert calm.policy == "out_of_scope" and "Triage" not in calm.text
    # ... but a danger sign in it still heads the answer
    fitting = answer_question("A 30-year-old woman in the waiting room is fitting now. How do I renew my practising "
                              "licence?",
                              generator=gen, retriever=FakeRetriever(top_dense=0.3))  # type: ignore[arg-type]
    assert fitting.policy == "out_of_scope" and fitting.text.startswith("Triage: EMERGENCY")


def test_unparseable_packet_is_repaired_or_recorded():
    gen = FakeGenerator(["<r><t>urgent</t><c>Severe malaria [1]</c><cf>hi", "no packet here"])
    a = answer_question("danger signs of malaria?", generator=gen, retriever=FakeRetriever(), format="xml")  # type: ignore[arg-type]
    assert a.parse_ok and a.repaired and a.fields["level"] == "urgent"
    b = answer_question("danger signs of malaria?", generator=gen, retriever=FakeRetriever(), format="array")  # type: ignore[arg-type]
    assert not b.parse_ok and b.fields is None and any("does not parse" in n for n in b.notes)


def test_extractive_default_and_logs(monkeypatch):
    monkeypatch.setattr(HybridRetriever, "open", classmethod(lambda cls, *a, **k: FakeRetriever()))
    res = runner.invoke(app, ["ask", "danger signs of severe malaria", "--format", "xml"])
    assert res.exit_code == 0, res.output
    assert "<r><t>" in res.output and "level:" in res.output
    res = runner.invoke(app, ["logs", "--json"])
    rows = json.loads(res.output)
    assert rows[0]["backend"] == "extractive" and set(rows[0]["chunk_ids"]) == {"c1", "c2"}
    assert "danger signs" in runner.invoke(app, ["logs", "-n", "1"]).output


def test_empty_question_is_one_line_error(monkeypatch):
    monkeypatch.delenv("RAGCDS_DEBUG", raising=False)
    res = runner.invoke(app, ["ask", "   "])
    assert res.exit_code == 1
    lines = [x for x in res.output.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: the question is empty")


def test_a_question_without_words_is_one_line_error(monkeypatch):
    monkeypatch.delenv("RAGCDS_DEBUG", raising=False)
    res = runner.invoke(app, ["ask", "123 456"])
    lines = [x for x in res.output.splitlines() if x.strip()]
    assert res.exit_code == 1 and len(lines) == 1 and "has no words — ask in words" in lines[0]


def test_unknown_model_is_one_line_error(monkeypatch):
    monkeypatch.delenv("RAGCDS_DEBUG", raising=False)
    res = runner.invoke(app, ["ask", "q?", "--model", "/no/such/model"])
    assert res.exit_code == 1 and "no model at '/no/such/model'" in res.output


def test_closed_book_treatment_answer_loses_every_dose():
    gen = FakeGenerator(["Give artesunate 2.4 mg/kg."])
    a = answer_question("Which dose of artesunate for severe malaria?", generator=gen, rag=False)
    assert a.mode == "closed-book" and a.passages == [] and "2.4 mg/kg" not in a.text
    assert a.policy == "answered" and "[dose removed" in a.text
