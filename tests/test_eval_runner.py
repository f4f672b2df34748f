"""The runner with fakes: resume after interruption, config checks, report reproduction, compare."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from ragcds.cli.main import app
from ragcds.evaluate.dataset import Question
from ragcds.evaluate.runner import RunConfig, RunConfigMismatch, read_items, run_eval
from ragcds.files import sha256_file
from ragcds.generate.base import Answer, Citation, GenerationRequest
from ragcds.ingest.chunk import Chunk
from tests.fakes import FakeGenerator, FakeSource

CHUNKS = [
    Chunk(f"c{i}", f"{i}.1", f"Title {i}", (f"Ch {i}",), "", (i * 10, i * 10 + 1), (str(i),), text)
    for i, text in enumerate(
        [
            "Malaria: give artesunate 2.4 mg/kg IV at 0, 12 and 24 hours.",
            "Organophosphate poisoning: give atropine 2 mg IV and remove contaminated clothing.",
            "Food poisoning is self-limiting; give oral rehydration (ORS).",
        ],
        start=1,
    )
]


def FakeRetriever() -> FakeSource:  # noqa: N802 - ranks chunks by shared words with the question
    return FakeSource(CHUNKS, top_dense=0.8)


def fake_answer(
    question,
    *,
    generator,
    retriever=None,
    format="prose",
    k=5,
    rag=True,
    policy="quote",
    max_new_tokens=256,
    temperature=0.0,
    retrieval=None,
) -> Answer:
    hits = list(retrieval.hits[:k]) if rag and retrieval else []
    text = generator.generate(
        GenerationRequest(
            messages=[{"role": "user", "content": question}], passages=tuple(hits), question=question
        )
    )
    cits = [
        Citation(
            n=int(n),
            valid=int(n) <= len(hits),
            pdf_pages=hits[int(n) - 1].chunk.pdf_pages if int(n) <= len(hits) else (),
        )
        for n in re.findall(r"\[(\d+)\]", text)
    ]
    return Answer(
        question=question,
        format=format,
        text=text,
        mode="rag" if rag else "closed-book",
        policy="answered",
        model=generator.model_id,
        backend=generator.backend,
        passages=hits,
        citations=cits,
        timings={"generate_s": 0.01},
    )


QUESTIONS = [
    Question(
        "q1",
        "How do I treat severe malaria?",
        "treatment",
        (10,),
        "1.1",
        "Malaria",
        (("artesunate",), ("2.4 mg/kg",)),
        None,
    ),
    Question(
        "q2",
        "Pinpoint pupils after pesticide, atropine?",
        "vignette",
        (20,),
        "2.1",
        "OP",
        (("atropine",), ("contaminated clothing",)),
        "emergency",
    ),
    Question(
        "q3",
        "Family vomiting after party food poisoning",
        "vignette",
        (30, 31),
        "3.1",
        "Food",
        (("self-limiting",),),
        "routine",
    ),
    Question("q4", "What is the capital of France?", "out_of_scope", (), "", "", (), None),
]


def config(**kw) -> RunConfig:
    base = dict(questions="qs.jsonl", questions_sha256="abc", modes=("closed-book", "rag"), model="fake")
    return RunConfig(**(base | kw))


def gen_factory(made: list):
    def generator_for(mode):
        g = FakeGenerator(model_id=f"fake-{mode}")
        g.generate = lambda req, g=g: (
            g.requests.append(req)
            or (f"{req.passages[0].chunk.text} [1]" if req.passages else "Urgent: rest.")
        )
        made.append(g)
        return g

    return generator_for


def test_run_writes_items_results_report(tmp_path):
    made: list = []
    res = run_eval(
        config(),
        QUESTIONS,
        FakeRetriever(),
        tmp_path,
        gen_factory(made),
        answer_fn=fake_answer,
        progress=None,
    )
    items = read_items(tmp_path / "items.jsonl")
    assert len(items) == 8 and {(i["mode"], i["id"]) for i in items} == {
        (m, q.id) for m in ("closed-book", "rag") for q in QUESTIONS
    }
    assert res["retrieval"]["overall"]["recall@1"]["mean"] == 1.0
    assert res["retrieval"]["overall"]["recall@1"]["n"] == 3  # out-of-scope has no gold pages
    rag, cb = res["modes"]["rag"], res["modes"]["closed-book"]
    assert rag["citation_validity"]["mean"] == 1.0 and rag["citation_precision"]["mean"] == 1.0
    assert rag["key_fact_recall"]["mean"] > cb["key_fact_recall"]["mean"]
    assert "closed-book->rag" in res["uplift"]
    for name in (
        "report.md",
        "results.json",
        "metrics_by_mode.png",
        "recall_at_k.png",
        "chapter_key_facts.png",
    ):
        assert (tmp_path / name).exists(), name
    assert "3.02/5" in (tmp_path / "report.md").read_text()


def test_interrupted_run_resumes_without_redoing_items(tmp_path):
    made: list = []
    seen: list = []

    def stop_after_three(rec):
        seen.append(rec)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_eval(
            config(),
            QUESTIONS,
            FakeRetriever(),
            tmp_path,
            gen_factory(made),
            answer_fn=fake_answer,
            progress=None,
            on_item=stop_after_three,
        )
    assert len(read_items(tmp_path / "items.jsonl")) == 3
    with (tmp_path / "items.jsonl").open("a") as fh:  # a line cut mid-write by the interruption
        fh.write('{"mode": "rag", "id": "q')
    made2: list = []
    run_eval(
        config(),
        QUESTIONS,
        FakeRetriever(),
        tmp_path,
        gen_factory(made2),
        answer_fn=fake_answer,
        progress=None,
    )
    items = read_items(tmp_path / "items.jsonl")
    pairs = [(i["mode"], i["id"]) for i in items]
    assert len(pairs) == 8 and len(set(pairs)) == 8
    assert sum(len(g.requests) for g in made2) == 5  # only the missing items were generated
    # a third run has nothing to do and does not retrieve
    r = FakeRetriever()
    run_eval(config(), QUESTIONS, r, tmp_path, gen_factory([]), answer_fn=fake_answer, progress=None)
    assert r.calls == [] and len(read_items(tmp_path / "items.jsonl")) == 8


def test_resume_refuses_other_settings_but_allows_a_bigger_limit(tmp_path):
    run_eval(
        config(limit=2),
        QUESTIONS[:2],
        FakeRetriever(),
        tmp_path,
        gen_factory([]),
        answer_fn=fake_answer,
        progress=None,
    )
    with pytest.raises(RunConfigMismatch, match=r"k: 5 -> 3.*new --out DIR or delete"):
        run_eval(
            config(k=3),
            QUESTIONS,
            FakeRetriever(),
            tmp_path,
            gen_factory([]),
            answer_fn=fake_answer,
            progress=None,
        )
    run_eval(
        config(limit=None),
        QUESTIONS,
        FakeRetriever(),
        tmp_path,
        gen_factory([]),
        answer_fn=fake_answer,
        progress=None,
    )
    assert len(read_items(tmp_path / "items.jsonl")) == 8


def test_item_errors_are_recorded_not_fatal(tmp_path):
    def boom(question, **kw):
        if "France" in question:
            raise RuntimeError("model crashed")
        return fake_answer(question, **kw)

    res = run_eval(
        config(modes=("rag",)),
        QUESTIONS,
        FakeRetriever(),
        tmp_path,
        gen_factory([]),
        answer_fn=boom,
        progress=None,
    )
    assert res["errors"]["rag"] == 1 and res["timings"]["rag"]["items"] == 3


def test_llm_modes_need_a_model(tmp_path):
    with pytest.raises(Exception, match="need a model"):
        run_eval(config(model=None), QUESTIONS, FakeRetriever(), tmp_path, gen_factory([]), progress=None)


def test_report_reproduces_from_results_json_and_compare(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    run_eval(config(), QUESTIONS, FakeRetriever(), a, gen_factory([]), answer_fn=fake_answer, progress=None)
    original = (a / "report.md").read_text()
    (a / "report.md").unlink()
    (a / "recall_at_k.png").unlink()
    runner = CliRunner()
    r = runner.invoke(app, ["eval", "report", str(a)])
    assert r.exit_code == 0, r.output
    assert (a / "report.md").read_text() == original and (a / "recall_at_k.png").exists()
    # the report's numbers come from results.json: change one and the report follows
    res = json.loads((a / "results.json").read_text())
    res["modes"]["rag"]["key_fact_recall"] = {"mean": 0.123, "lo": 0.1, "hi": 0.2, "n": 4}
    (a / "results.json").write_text(json.dumps(res))
    runner.invoke(app, ["eval", "report", str(a)])
    assert "0.12 [0.10, 0.20] (n=4)" in (a / "report.md").read_text()
    r = runner.invoke(app, ["eval", "report", str(a), "--recompute"])
    assert (a / "report.md").read_text() == original
    r = runner.invoke(
        app, ["eval", "report", str(a), "--rescore"]
    )  # config names a questions file that is gone
    assert r.exit_code == 1 and "re-scoring needs the same question set" in r.output
    # compare: B answers closed-book like rag, so closed-book key-fact recall rises
    run_eval(
        config(modes=("closed-book",)),
        QUESTIONS,
        FakeRetriever(),
        b,
        gen_factory([]),
        answer_fn=lambda q, **kw: fake_answer(q, **(kw | {"rag": True})),
        progress=None,
    )
    r = runner.invoke(app, ["eval", "compare", str(a), str(b)])
    assert r.exit_code == 0, r.output
    assert "key_fact_recall" in r.output and "closed-book" in r.output and "retrieval" in r.output
    bad = runner.invoke(app, ["eval", "compare", str(a), str(tmp_path / "none")])
    assert bad.exit_code == 1


def test_rescore_recomputes_metrics_from_stored_answers(tmp_path):
    qfile = tmp_path / "qs.jsonl"
    qfile.write_text(
        "".join(
            json.dumps(
                {
                    "id": q.id,
                    "question": q.question,
                    "kind": q.kind,
                    "gold_pages": list(q.gold_pages),
                    "gold_section": q.gold_section,
                    "gold_title": q.gold_title,
                    "key_facts": [list(f) for f in q.key_facts],
                    "triage": q.triage,
                }
            )
            + "\n"
            for q in QUESTIONS
        )
    )
    index = tmp_path / "index"
    (index / "versions" / "v1").mkdir(parents=True)
    (index / "versions" / "v1" / "chunks.jsonl").write_text(
        "".join(json.dumps(c.to_dict()) + "\n" for c in CHUNKS)
    )
    run = tmp_path / "run"
    cfg = config(questions=str(qfile), questions_sha256=sha256_file(qfile), index_version="v1")
    run_eval(cfg, QUESTIONS, FakeRetriever(), run, gen_factory([]), answer_fn=fake_answer, progress=None)
    original = (run / "report.md").read_text()
    items = read_items(run / "items.jsonl")
    for it in items:
        it["metrics"]["key_fact_recall"] = 0.0
    (run / "items.jsonl").write_text("".join(json.dumps(it) + "\n" for it in items))
    stored = [p for it in read_items(run / "items.jsonl") for p in it["reference"] + it["answer"]["passages"]]
    # texts stay in the index
    assert stored and all("text" not in p and {"chunk_id", "pdf_pages"} <= set(p) for p in stored)
    r = CliRunner().invoke(app, ["eval", "report", str(run), "--rescore"])
    assert r.exit_code == 1 and "re-scoring needs the index" in r.output  # ./index is absent
    r = CliRunner().invoke(app, ["eval", "report", str(run), "--rescore", "--index", str(index)])
    assert r.exit_code == 0, r.output
    assert "re-scored 8 items" in r.output and (run / "report.md").read_text() == original
    partial = tmp_path / "partial"
    (partial / "versions" / "v1").mkdir(parents=True)
    (partial / "versions" / "v1" / "chunks.jsonl").write_text(json.dumps(CHUNKS[0].to_dict()) + "\n")
    r = CliRunner().invoke(app, ["eval", "report", str(run), "--rescore", "--index", str(partial)])
    assert r.exit_code == 1 and "passages of the run are not in" in r.output


def test_judge_over_a_fake_openai_server(tmp_path):
    import httpx

    from ragcds.errors import BackendUnavailable
    from ragcds.evaluate.judge import Judge

    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json={"choices": [{"message": {"content": "Score: 4"}}]})

    judge = Judge("http://judge.test/v1", "grader", api_key="k", transport=httpx.MockTransport(handler))
    res = run_eval(
        config(modes=("rag",), judge_model="grader"),
        QUESTIONS,
        FakeRetriever(),
        tmp_path,
        gen_factory([]),
        answer_fn=fake_answer,
        judge=judge,
        progress=None,
    )
    assert res["modes"]["rag"]["judge_score"]["mean"] == 4.0 and seen[0]["model"] == "grader"
    assert "Guideline excerpts" in seen[0]["messages"][1]["content"]

    def down(request):
        raise httpx.ConnectError("refused")

    with pytest.raises(BackendUnavailable, match="unreachable.*--judge"):
        Judge("http://judge.test/v1", "grader", transport=httpx.MockTransport(down)).check()


def test_run_cli_expected_errors_are_one_line(tmp_path):
    qfile = tmp_path / "qs.jsonl"
    qfile.write_text(
        json.dumps(
            {
                "id": "a",
                "question": "q?",
                "kind": "fact",
                "gold_pages": [1],
                "gold_section": "1",
                "gold_title": "t",
                "key_facts": [["x"]],
                "triage": None,
            }
        )
        + "\n"
    )
    runner = CliRunner()
    r = runner.invoke(
        app, ["eval", "run", "-q", str(qfile), "--modes", "rag", "--index", str(tmp_path / "none")]
    )
    assert r.exit_code == 1 and "need a model" in r.output
    r = runner.invoke(app, ["eval", "run", "-q", str(qfile), "--modes", "bogus"])
    assert r.exit_code == 1 and "unknown mode bogus" in r.output


def test_progress_callback_is_told_each_item(tmp_path):
    seen = []
    res = run_eval(
        config(modes=("rag",)),
        QUESTIONS[:2],
        FakeRetriever(),
        tmp_path,
        gen_factory([]),
        answer_fn=fake_answer,
        progress=lambda stage, done, total, detail: seen.append((stage, done, total)),
    )
    assert res["timings"]["rag"]["items"] == 2
    assert seen == [("eval", 0, 2), ("eval", 1, 2), ("eval", 2, 2)]
