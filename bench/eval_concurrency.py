"""Benchmark `ragcds eval run --concurrency N` against an OpenAI-compatible server with a fixed latency.

A fake server on loopback (tests.fakes.FakeChatServer: one thread per request, replies built from the
request) answers every chat request after --latency seconds (default 0.2, a 4B model's short answer on a
busy GPU). The real evaluator runs the dev questions in mode rag over the real index at N = 1, 4, 16;
items/s of the answering phase (retrieval, done once per run before it, is excluded) is printed as a ratio
to N = 1 measured in the same run. The records of every N are checked to equal N = 1's (timings aside).
Target: ≥ 10× at N = 16.

    python bench/eval_concurrency.py --index index [--questions ../shared/eval/dev.jsonl] [--limit 63]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import DEV_SET, require  # noqa: E402
from ragcds.evaluate.dataset import load_questions  # noqa: E402
from ragcds.evaluate.runner import RunConfig, read_items, run_eval  # noqa: E402
from ragcds.files import sha256_file  # noqa: E402
from ragcds.generate.backends import load_generator  # noqa: E402
from ragcds.retrieve import HybridRetriever  # noqa: E402
from tests.fakes import FakeChatServer  # noqa: E402


def one_run(n: int, url: str, questions: Path, qs: list, retriever, out: Path) -> tuple[float, list[dict]]:
    """(seconds of the answering phase, records) of one evaluation at concurrency n."""
    config = RunConfig(questions=str(questions), questions_sha256=sha256_file(questions), modes=("rag",),
                       model=url, index_version=retriever.index.version_id)
    gen = load_generator(url)
    marks: list[float] = []
    t0 = time.perf_counter()
    results = run_eval(config, qs, retriever, out, lambda mode: gen, progress=None, concurrency=n,
                       on_item=lambda rec: marks.append(time.perf_counter()))
    retrieval = results["timings"]["session"]["retrieval_s_this_session"]
    return marks[-1] - t0 - retrieval, read_items(out / "items.jsonl")


def comparable(items: list[dict]) -> list[dict]:
    return [{k: v for k, v in it.items() if k != "seconds"} | {"answer": {k: v for k, v in it["answer"].items()
                                                                         if k != "timings"}} for it in items]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, default=Path("index"))
    ap.add_argument("--questions", type=Path, default=DEV_SET)
    ap.add_argument("--limit", type=int, default=None, help="only the first N questions")
    ap.add_argument("--latency", type=float, default=0.2, help="server seconds per request")
    ap.add_argument("--levels", default="1,4,16", help="concurrency levels (the first is the baseline)")
    args = ap.parse_args(argv)
    qs = load_questions(require(args.questions), args.limit)
    retriever = HybridRetriever.open(require(args.index))
    retriever.search("warm-up: signs of severe malaria", k=1)
    server = FakeChatServer(latency=args.latency)
    levels = [int(x) for x in args.levels.split(",")]
    rows, base_items = [], None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for n in levels:
                secs, items = one_run(n, server.url, args.questions, qs, retriever, Path(tmp) / f"n{n}")
                same = base_items is None or comparable(items) == comparable(base_items)
                base_items = base_items or items
                rows.append((n, len(items), secs, len(items) / secs, same, server.max_in_flight))
                server.max_in_flight = 0
    finally:
        server.close()
    base = rows[0][3]
    print(f"fake OpenAI-compatible server, {args.latency * 1000:.0f} ms per request; {len(qs)} questions, mode rag")
    print(f"{'N':>3} {'items':>5} {'answer s':>8} {'items/s':>8} {'ratio':>6}  max in flight  same records")
    for n, k, secs, rate, same, peak in rows:
        print(f"{n:>3} {k:>5} {secs:>8.2f} {rate:>8.2f} {rate / base:>5.1f}×  {peak:>13}  {'yes' if same else 'NO'}")
    top = rows[-1]
    print(f"target ≥ 10× at N = 16: {top[3] / base:.1f}× at N = {top[0]}")
    return 0 if all(r[4] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
