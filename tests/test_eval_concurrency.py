"""`ragcds eval run --concurrency N`: ordered bounded map, what overlaps (server calls only), a run against a
fake OpenAI-compatible server equal to the sequential run, resume, and the backend's retries on 429/5xx."""

from __future__ import annotations

import json
import threading
import time

import pytest
from typer.testing import CliRunner

from ragcds.cli.main import app
from ragcds.errors import BackendUnavailable
from ragcds.evaluate.concurrency import Overlap, ordered_map
from ragcds.evaluate.dataset import Question
from ragcds.evaluate.runner import RunConfig, read_items, run_eval
from ragcds.generate.backends import load_generator
from ragcds.generate.base import GenerationRequest
from ragcds.retrieve import HybridRetriever
from tests.fakes import FakeChatServer, FakeGenerator
from tests.test_ask_cli import FakeRetriever as AskRetriever

TOPICS = ["severe malaria", "convulsions", "snakebite", "dehydration", "anaphylaxis", "tetanus",
          "brucellosis", "anthrax", "burns", "neonatal jaundice", "pneumonia", "hypoglycaemia"]
QUESTIONS = [
    Question(f"q{i:02d}", f"What are the danger signs of {t}?", "fact", (120,), "2.5.2.2", "Malaria",
             (("convulsions",),), None)
    for i, t in enumerate(TOPICS)
]


def Retriever() -> object:  # noqa: N802 - the ask tests' fake index (retrieve_many included)
    return AskRetriever()


@pytest.fixture
def server():
    s = FakeChatServer(latency=0.02)
    yield s
    s.close()


class Counter:
    """Counts calls running at the same time."""

    def __init__(self):
        self.now = self.most = self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, x: int) -> int:
        with self.lock:
            self.now += 1
            self.calls += 1
            self.most = max(self.most, self.now)
        time.sleep(0.01 * (x % 3))
        with self.lock:
            self.now -= 1
        if x == 7:
            raise ValueError("seven")
        return x * x


def test_ordered_map_keeps_input_order_and_bounds_calls():
    c = Counter()
    assert list(ordered_map(c, range(7), workers=3)) == [(i, i * i) for i in range(7)]
    assert 1 < c.most <= 3
    c = Counter()
    assert list(ordered_map(c, range(7), workers=1)) == [(i, i * i) for i in range(7)] and c.most == 1


def test_ordered_map_hands_back_finished_results_then_raises():
    c = Counter()
    got = []
    with pytest.raises(ValueError, match="seven"):
        for item, _ in ordered_map(c, range(30), workers=4, window=4):
            got.append(item)
    # nothing after the failure's window was started; what had started was handed back
    assert got[:7] == list(range(7)) and 7 not in got and set(got) <= set(range(12)) and c.calls < 30


def test_ordered_map_cancels_calls_not_started_when_the_caller_stops():
    c = Counter()
    for item, _ in ordered_map(c, range(100), workers=2, window=4):
        if item == 1:
            break
    time.sleep(0.1)
    assert c.calls <= 6


def test_only_server_calls_overlap():
    overlap = Overlap()
    for concurrent, expect_parallel in ((False, False), (True, True)):
        gen = FakeGenerator(model_id="m")
        gen.concurrent = concurrent
        c = Counter()
        gen.generate = lambda req, c=c: c(0)  # type: ignore[method-assign]

        def item(_, gen=gen):
            with overlap:
                overlap.generator(gen).generate(None)
                return overlap.generator(gen).model_id

        assert [r for _, r in ordered_map(item, range(8), workers=4)] == ["m"] * 8
        assert (c.most > 1) is expect_parallel


def strip(items: list[dict]) -> list[dict]:
    """A record without its timings (the only part that may differ between two runs)."""
    out = []
    for it in items:
        it = dict(it)
        it.pop("seconds", None)
        it["answer"] = {k: v for k, v in it["answer"].items() if k != "timings"}
        out.append(it)
    return out


def run(tmp_path, name: str, url: str, n: int, fmt: str = "prose", qs=QUESTIONS, modes=("closed-book", "rag"),
        **kw) -> list[dict]:
    cfg = RunConfig(questions="qs.jsonl", questions_sha256="abc", modes=modes, model=url, format=fmt)
    gen = load_generator(url, retries=1, backoff=0.01)
    run_eval(cfg, qs, Retriever(), tmp_path / name, lambda mode: gen, progress=None, concurrency=n, **kw)
    return read_items(tmp_path / name / "items.jsonl")


@pytest.mark.parametrize("fmt", ["prose", "xml"])
def test_concurrent_run_writes_what_the_sequential_run_writes(tmp_path, server, fmt):
    one = run(tmp_path, "one", server.url, 1, fmt)
    assert server.max_in_flight == 1
    many = run(tmp_path, "many", server.url, 6, fmt)
    assert 1 < server.max_in_flight <= 6
    assert [(i["id"], i["mode"]) for i in many] == [(q.id, m) for q in QUESTIONS for m in ("closed-book", "rag")]
    assert strip(many) == strip(one) and all("error" not in i for i in many)
    assert {i["answer"]["model"] for i in many} == {"served-model"}
    a, b = (json.loads((tmp_path / name / "results.json").read_text()) for name in ("one", "many"))
    assert all(a[k] == b[k] for k in ("modes", "retrieval", "by_kind", "errors", "uplift"))


def test_interrupted_concurrent_run_resumes_to_the_sequential_result(tmp_path, server):
    seen = []

    def stop_after_five(rec):
        seen.append(rec)
        if len(seen) == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, "cut", server.url, 4, on_item=stop_after_five)
    assert len(read_items(tmp_path / "cut" / "items.jsonl")) == 5
    resumed = run(tmp_path, "cut", server.url, 4)
    assert strip(resumed) == strip(run(tmp_path, "seq", server.url, 1))


def test_extra_question_fields_are_kept_and_reported_once(tmp_path, server):
    qs = [Question(**{**q.__dict__, "extra": {"source": "UCG", "author": "am"}}) for q in QUESTIONS[:2]]
    items = run(tmp_path, "x", server.url, 2, qs=qs)
    assert all(i["extra"] == {"source": "UCG", "author": "am"} for i in items)
    report = (tmp_path / "x" / "report.md").read_text()
    assert report.count("question fields not used by the metrics: `author`, `source`") == 1


def test_server_errors_are_retried_with_backoff():
    s = FakeChatServer(fail=[429, 503])
    try:
        gen = load_generator(s.url, backoff=0.01)
        msgs = [{"role": "user", "content": "Question: fever"}]
        assert gen.generate(GenerationRequest(messages=msgs)) == "The passages describe fever [1]."
        assert len(s.requests) == 3
        s.fail = [500] * 3
        with pytest.raises(BackendUnavailable, match=r"HTTP 500 3 times.*lower --concurrency"):
            load_generator(s.url, model_name="m", retries=2, backoff=0.01).generate(GenerationRequest(messages=msgs))
        s.fail, before = [400], len(s.requests)
        with pytest.raises(BackendUnavailable, match="HTTP 400"):
            gen.generate(GenerationRequest(messages=msgs))
        assert len(s.requests) == before + 1  # a client error is not retried
    finally:
        s.close()


def test_cli_concurrency_option_and_local_backend_note(tmp_path, server, monkeypatch):
    monkeypatch.setattr(HybridRetriever, "open", classmethod(lambda cls, *a, **k: Retriever()))
    qfile = tmp_path / "qs.jsonl"
    rows = [{"id": q.id, "question": q.question, "kind": q.kind, "gold_pages": list(q.gold_pages),
             "gold_section": q.gold_section, "gold_title": q.gold_title, "key_facts": [["convulsions"]],
             "triage": None, "notes": "from a workshop"} for q in QUESTIONS[:4]]
    qfile.write_text("".join(json.dumps(r) + "\n" for r in rows))
    runner = CliRunner()
    res = runner.invoke(app, ["eval", "run", "-q", str(qfile), "--model", server.url, "--modes", "rag",
                              "--concurrency", "4", "--out", str(tmp_path / "r"), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "local backends" not in res.stderr and res.stderr.count("not used by the metrics: notes") == 1
    assert [i["id"] for i in read_items(tmp_path / "r" / "items.jsonl")] == [r["id"] for r in rows]
    res = runner.invoke(app, ["eval", "run", "-q", str(qfile), "--concurrency", "4", "--out", str(tmp_path / "e"),
                              "--no-progress"])
    assert res.exit_code == 0 and "local backends run one item at a time" in res.stderr


def test_a_server_that_keeps_failing_stops_the_run_keeping_finished_items(tmp_path, server):
    server.fail = [200] * 5 + [503] * 100  # five answers, then overloaded for good
    with pytest.raises(BackendUnavailable, match="HTTP 503 2 times"):
        run(tmp_path, "r", server.url, 4, modes=("rag",))
    kept = read_items(tmp_path / "r" / "items.jsonl")
    assert len(kept) == 5 and all("error" not in i for i in kept)  # every answer computed was written
    server.fail = []
    resumed = run(tmp_path, "r", server.url, 4, modes=("rag",))
    by_id = sorted(strip(resumed), key=lambda i: i["id"])
    assert by_id == strip(run(tmp_path, "seq", server.url, 1, modes=("rag",)))
