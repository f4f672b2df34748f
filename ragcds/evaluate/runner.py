"""The evaluation runner: retrieval once per question, then each mode, appended per item to OUT/items.jsonl.

An interrupted run continues where it stopped: (mode, id) pairs already in items.jsonl are skipped. The
run's settings are kept in OUT/config.json; resuming with different settings is refused (``--limit`` may
change, so a short smoke run can grow into the full run).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from ragcds import __version__
from ragcds.errors import RagcdsError
from ragcds.evaluate import runfiles
from ragcds.evaluate.compare import mode_deltas
from ragcds.evaluate.concurrency import Overlap, ordered_map
from ragcds.evaluate.dataset import Question
from ragcds.evaluate.judge import Judge
from ragcds.evaluate.metrics import aggregate, retrieval_metrics, score_answer, shown_text
from ragcds.evaluate.report import write_report
from ragcds.evaluate.runfiles import RunConfigMismatch, read_items  # noqa: F401 - re-exported for callers
from ragcds.files import read_jsonl, sha256_file
from ragcds.generate.answer import answer_question, answer_to_json
from ragcds.generate.base import Answer, Generator
from ragcds.retrieve import Hit, Retrieval

MODES: tuple[str, ...] = ("closed-book", "rag", "extractive")
LLM_MODES = frozenset({"closed-book", "rag"})
Progress = Callable[[str, int, int, str], None]  # (stage, done, total, detail)
RETRIEVE_DEPTH = 10  # retrieval metrics look at the top 10 whatever -k is


class BatchRetriever(Protocol):
    """What the runner needs of a retriever (HybridRetriever; tests pass fakes): one batch retrieval."""

    def retrieve_many(self, questions: Sequence[str], k: int = 10, mode: str = "hybrid") -> list[Retrieval]: ...


@dataclass
class RunConfig:
    questions: str
    questions_sha256: str
    modes: tuple[str, ...] = ("extractive",)
    model: str | None = None
    backend: str = "auto"
    format: str = "prose"
    k: int = 5
    policy: str = "quote"
    max_new_tokens: int = 160
    temperature: float = 0.0
    retrieval_mode: str = "hybrid"
    index_version: str = ""
    judge_model: str | None = None
    limit: int | None = None
    ragcds_version: str = __version__
    extra: dict = field(default_factory=dict)

    def identity(self) -> dict:
        d = asdict(self)
        d.pop("limit")
        d["modes"] = list(self.modes)
        return d

    def check(self) -> None:
        bad = [m for m in self.modes if m not in MODES]
        if bad or not self.modes:
            raise RagcdsError(f"unknown mode {', '.join(bad) or '(none)'}; choose from {', '.join(MODES)}")
        if LLM_MODES & set(self.modes) and not self.model:
            raise RagcdsError(
                "modes closed-book and rag need a model: pass --model REF (or run --modes extractive alone)"
            )


def prepare_out(out_dir: Path, config: RunConfig) -> set[tuple[str, str]]:
    """Create OUT or check it matches; returns the (mode, id) pairs already done."""
    runfiles.claim_out(out_dir, config.identity(), asdict(config) | {"modes": list(config.modes)})
    return {(r["mode"], r["id"]) for r in runfiles.read_items(out_dir / runfiles.ITEMS)}


def answer_record(answer: Answer) -> dict:
    """The answer's one serialisation (ragcds.generate.answer.answer_to_json), passage texts kept for scoring."""
    return answer_to_json(answer)


def _passage(h: Hit) -> dict:
    """A passage as metrics see it: its heading context (section number and title) and its text. Only the
    chunk id and pages are written to items.jsonl (texts come back from the index on --rescore)."""
    return {"chunk_id": h.chunk.chunk_id, "pdf_pages": list(h.chunk.pdf_pages), "text": h.chunk.index_text}


def _strip_texts(passages: list[dict]) -> list[dict]:
    return [{k: v for k, v in p.items() if k != "text"} for p in passages]


def _hit_ref(h: Hit) -> dict:
    return {"chunk_id": h.chunk.chunk_id, "section": h.chunk.section, "pdf_pages": list(h.chunk.pdf_pages)}


def default_answer_fn() -> Callable[..., Answer]:
    return answer_question


def run_eval(
    config: RunConfig,
    questions: Sequence[Question],
    retriever: BatchRetriever,
    out_dir: Path,
    generator_for: Callable[[str], Generator],
    *,
    answer_fn: Callable[..., Answer] | None = None,
    judge: Judge | None = None,
    progress: Progress | None = None,
    on_item: Callable[[dict], None] | None = None,
    concurrency: int = 1,
) -> dict:
    """Run every (mode, question) pair not yet in OUT/items.jsonl, then write results.json and the report.

    ``generator_for(mode)`` returns the Generator for a mode (called lazily, once per mode that has work).
    ``progress(stage, done, total, detail)`` is told about each item (None: silent; the CLI passes its
    display). ``on_item`` is called after each record is written (tests use it to simulate an interruption).
    ``concurrency`` N keeps up to N server requests in flight (ragcds.evaluate.concurrency); records are
    written in the same order as a sequential run.
    """
    config.check()
    out_dir = Path(out_dir)
    done = prepare_out(out_dir, config)
    todo = [(q, m) for q in questions for m in config.modes if (m, q.id) not in done]
    pending_q = list(dict.fromkeys(q for q, _ in todo))
    t0 = time.perf_counter()
    stored: dict[str, Retrieval] = {}
    if pending_q:
        texts = list(dict.fromkeys(q.question for q in pending_q))
        depth = max(RETRIEVE_DEPTH, config.k)
        found = retriever.retrieve_many(texts, k=depth, mode=config.retrieval_mode)
        stored = dict(zip(texts, found, strict=True))
    retrieval_s = time.perf_counter() - t0
    answer_fn = answer_fn or default_answer_fn()
    gens: dict[str, Generator] = {}
    items_path = out_dir / runfiles.ITEMS

    overlap = Overlap()  # --- concurrency hook: run_one runs on worker threads when concurrency > 1

    def run_one(job: tuple[Question, str]) -> dict:
        q, mode = job
        with overlap:
            gen = gens[mode] if mode in gens else gens.setdefault(mode, generator_for(mode))
            g, j = overlap.generator(gen), overlap.judge(judge)
            rec = _run_item(config, q, mode, stored[q.question], retriever, g, answer_fn, j)
        return rec | ({"extra": q.extra} if q.extra else {})

    if progress and todo:
        progress("eval", 0, len(todo), "")
    with items_path.open("a", encoding="utf-8") as fh:
        for n, ((q, mode), rec) in enumerate(ordered_map(run_one, todo, concurrency), 1):
            runfiles.append_record(fh, rec)
            if progress:
                progress("eval", n, len(todo), f"{mode:<11} {q.id}")
            if on_item:
                on_item(rec)
    results = finalize(out_dir, extra_timings={"retrieval_s_this_session": round(retrieval_s, 2)})
    return results


def _run_item(
    config: RunConfig,
    q: Question,
    mode: str,
    retrieval: Retrieval,
    retriever: BatchRetriever,
    generator: Generator,
    answer_fn: Callable[..., Answer],
    judge: Judge | None,
) -> dict:
    hs = list(retrieval.hits)
    rec: dict = {
        "mode": mode,
        "id": q.id,
        "kind": q.kind,
        "chapter": q.chapter,
        "triage_gold": q.triage,
        "retrieval": retrieval_metrics(q.gold_pages, [h.chunk.pdf_pages for h in hs])
        | {"top": [_hit_ref(h) for h in hs]},
    }
    t = time.perf_counter()
    try:
        ans = answer_fn(
            q.question,
            generator=generator,
            retriever=retriever,
            retrieval=retrieval,
            format=config.format,
            k=config.k,
            rag=mode != "closed-book",
            policy=config.policy,
            max_new_tokens=config.max_new_tokens,
            temperature=config.temperature,
        )
        a = answer_record(ans)
    except RagcdsError:
        raise
    except Exception as exc:  # noqa: BLE001 - one bad item must not lose a long run; it is recorded
        rec.update(seconds=round(time.perf_counter() - t, 3), error=f"{type(exc).__name__}: {exc}")
        return rec
    rec["seconds"] = round(time.perf_counter() - t, 3)
    retrieved = [_passage(h) for h in hs[: config.k]]
    rec["metrics"] = score_answer(q, a, retrieved)
    if judge is not None:
        rec["metrics"]["judge_score"] = judge.score(q, shown_text(a), retrieved)
    a["passages"] = _strip_texts(a["passages"])
    rec["answer"] = a
    rec["reference"] = _strip_texts(retrieved)  # with the shown passages: what `--rescore` re-scores against
    return rec


def _index_texts(index_dir: Path, version: str) -> dict[str, str]:
    """chunk id -> passage text from the run's index version, else the current one (chunk ids are content
    hashes, so an id found in another version names the same text)."""
    from ragcds.index.store import resolve_version_dir
    from ragcds.ingest.chunk import Chunk

    path = Path(index_dir) / "versions" / version / "chunks.jsonl"
    if not (version and path.is_file()):
        try:
            path = resolve_version_dir(Path(index_dir)) / "chunks.jsonl"
        except RagcdsError as exc:
            raise RagcdsError(
                f"re-scoring needs the index the run used (pass it with --index): {exc}"
            ) from exc
    chunks = (Chunk.from_dict(d) for d in read_jsonl(path))
    return {c.chunk_id: c.index_text for c in chunks}


def rescore(out_dir: Path, index_dir: Path) -> int:
    """Recompute every item's metrics from the stored answer and passage ids (after a metric-rule change),
    reading passage texts from the run's index version; judge scores are kept. Rewrites items.jsonl
    atomically; returns the number of items re-scored."""
    from ragcds.evaluate.dataset import load_questions

    out_dir = Path(out_dir)
    cfg = runfiles.read_config(out_dir)
    qpath = Path(cfg["questions"])
    if not qpath.is_file() or sha256_file(qpath) != cfg["questions_sha256"]:
        raise RagcdsError(
            f"{qpath} is missing or changed since the run; re-scoring needs the same question set"
        )
    texts = _index_texts(index_dir, cfg.get("index_version", ""))
    qs = {q.id: q for q in load_questions(qpath)}
    items = runfiles.read_items(out_dir / runfiles.ITEMS)
    needed = {
        p["chunk_id"]
        for it in items
        if not it.get("error")
        for p in it.get("reference", []) + it.get("answer", {}).get("passages", [])
    }
    missing = needed - set(texts)
    if missing:
        raise RagcdsError(
            f"{len(missing)} passages of the run are not in {index_dir} (e.g. {sorted(missing)[0]}); "
            "re-scoring needs the index the run used (pass it with --index)"
        )
    n = 0
    for it in items:
        if it.get("error") or "reference" not in it or it["id"] not in qs:
            continue
        fill = [{**p, "text": texts.get(p["chunk_id"], "")} for p in it["reference"]]
        answer = it["answer"] | {
            "passages": [{**p, "text": texts.get(p["chunk_id"], "")} for p in it["answer"]["passages"]]
        }
        judge = it["metrics"].get("judge_score")
        it["metrics"] = score_answer(qs[it["id"]], answer, fill)
        if judge is not None:
            it["metrics"]["judge_score"] = judge
        n += 1
    runfiles.write_items(out_dir, items)
    return n


def finalize(out_dir: Path, extra_timings: dict | None = None) -> dict:
    """Aggregate items.jsonl into results.json and regenerate report.md and the plots."""
    out_dir = Path(out_dir)
    cfg = runfiles.read_config(out_dir)
    items = runfiles.read_items(out_dir / runfiles.ITEMS)
    results = {"config": cfg, **aggregate(items, cfg["modes"]), "uplift": mode_deltas(items, cfg["modes"])}
    if extra_timings:
        results["timings"]["session"] = extra_timings
    runfiles.write_results(out_dir, results)
    write_report(out_dir)
    return results
