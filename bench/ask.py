"""Benchmark `answer_question`: latency per stage (retrieve, prompt, generate) and parse rate per format.

Backends: extractive (always) and transformers on the packaged GGUF models. The extractive backend is the
in-process baseline; model rows print their generate time as a ratio to it.

    nice python bench/ask.py --index /tmp/idx_a -n 5 --models smollm2 --formats xml,array
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ragcds.generate.answer import answer_question  # noqa: E402
from ragcds.generate.backends import load_generator  # noqa: E402
from ragcds.retrieve import HybridRetriever  # noqa: E402

DEFAULT_DEV = REPO.parent / "shared" / "eval" / "dev.jsonl"


def run(generator, retriever, questions: list[str], fmt: str, k: int, max_new_tokens: int) -> dict:
    stages: dict[str, list[float]] = {"retrieve": [], "prompt": [], "generate": [], "total": []}
    parsed = repaired = generated = 0
    for q in questions:
        a = answer_question(
            q,
            generator=generator,
            retriever=retriever,
            format=fmt,
            k=k,  # type: ignore[arg-type]
            max_new_tokens=max_new_tokens,
        )
        for s in stages:
            if s in a.timings:
                stages[s].append(a.timings[s])
        if "generate" in a.timings:  # out-of-scope and refused answers have no packet to parse
            generated += 1
            parsed += a.parse_ok
            repaired += a.repaired
    med = {s: statistics.median(v) if v else 0.0 for s, v in stages.items()}
    return {"n": len(questions), "generated": generated, "parsed": parsed, "repaired": repaired, **med}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, default=Path("index"))
    ap.add_argument("--dev", type=Path, default=DEFAULT_DEV)
    ap.add_argument("-n", "--questions", type=int, default=5, help="number of dev questions (0 = all)")
    ap.add_argument("--models", default="smollm2,gemma3-270m", help="packaged names or paths ('' = none)")
    ap.add_argument("--formats", default="prose,xml,array")
    ap.add_argument("-k", type=int, default=3)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    rows = [json.loads(x) for x in args.dev.read_text().splitlines() if x.strip()]
    questions = [r["question"] for r in (rows[: args.questions] if args.questions else rows)]
    retriever = HybridRetriever.open(args.index)
    formats = [f for f in args.formats.split(",") if f]
    results = []
    targets = [("extractive", None)] + [("transformers", m) for m in args.models.split(",") if m]
    for backend, ref in targets:
        t0 = time.perf_counter()
        gen = load_generator(ref, backend=backend)
        load_s = time.perf_counter() - t0
        for fmt in formats:
            r = run(gen, retriever, questions, fmt, args.k, args.max_new_tokens)
            results.append({"backend": backend, "model": gen.model_id, "format": fmt, "load_s": load_s, **r})
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    base = {r["format"]: r["generate"] for r in results if r["backend"] == "extractive"}
    print(
        f"{len(questions)} dev questions, k={args.k}, max_new_tokens={args.max_new_tokens}; "
        "medians in seconds"
    )
    head = (
        f"{'backend':<13}{'model':<34}{'format':<7}{'retrieve':>9}{'prompt':>8}{'generate':>10}"
        f"{'total':>8}{'x extr.':>9}{'parsed':>9}{'repaired':>9}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        ratio = r["generate"] / base[r["format"]] if base.get(r["format"]) else float("nan")
        print(
            f"{r['backend']:<13}{r['model'][:33]:<34}{r['format']:<7}{r['retrieve']:>9.3f}{r['prompt']:>8.4f}"
            f"{r['generate']:>10.3f}{r['total']:>8.2f}{ratio:>9.0f}"
            f"{r['parsed']:>5}/{r['generated']:<3}{r['repaired']:>9}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
