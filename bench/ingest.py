"""Full build of the real UCG index, per stage, against the LlamaIndex default pipeline in the same run.

    python bench/ingest.py            # both, each in its own subprocess (so peak memory is its own)
    python bench/ingest.py --only ragcds|baseline

Both embed with the same all-MiniLM-L6-v2 weights: ragcds through its build embedder (bfloat16 matrix products
on a CPU with native bf16, see ragcds/index/embedders.py), the baseline through sentence-transformers in float32
as LlamaIndex's default HuggingFace embedding runs it. ragcds also embeds one section unit per section.
Target (issue 10): a full ragcds build <= 60 s on the 2-core machine and no slower than the baseline.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import UCG_PDF, peak_rss_mb, require  # noqa: E402

TARGET_S = 60.0


def run_ragcds() -> dict:
    from ragcds.index.build import build_index
    from ragcds.index.embedders import load_embedder

    t0 = time.perf_counter()
    emb = load_embedder("default")
    load_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        report = build_index(require(UCG_PDF), Path(tmp) / "index", emb, "default")
        build_s = time.perf_counter() - t
    return {"name": "ragcds", "model_load_s": load_s, "build_s": build_s, "stages": report.stage_seconds,
            "chunks": report.chunks, "chunks_per_s": report.chunks / build_s, "peak_rss_mb": peak_rss_mb(),
            "toc_coverage": report.toc_coverage}


def run_baseline() -> dict:
    from bench.common import llamaindex_default_index
    from ragcds.index.embedders import SentenceTransformerEmbedder, default_model_path
    from ragcds.ingest.pdf import read_pdf

    t0 = time.perf_counter()
    emb = SentenceTransformerEmbedder(default_model_path(), precision="float32")
    load_s = time.perf_counter() - t0
    t = time.perf_counter()
    pages = read_pdf(require(UCG_PDF))
    read_s = time.perf_counter() - t
    t = time.perf_counter()
    _, n = llamaindex_default_index(pages, emb)
    index_s = time.perf_counter() - t
    build_s = read_s + index_s
    return {"name": "llamaindex-default", "model_load_s": load_s, "build_s": build_s,
            "stages": {"read": read_s, "split+embed+index": index_s}, "chunks": n, "chunks_per_s": n / build_s,
            "peak_rss_mb": peak_rss_mb()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["ragcds", "baseline"])
    args = ap.parse_args()
    if args.only:
        print(json.dumps(run_ragcds() if args.only == "ragcds" else run_baseline()))
        return
    require(UCG_PDF)
    results = []
    for which in ("ragcds", "baseline"):
        print(f"running {which} ...", file=sys.stderr, flush=True)
        proc = subprocess.run([sys.executable, __file__, "--only", which], capture_output=True, text=True, check=True)
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    ours, base = results
    print(f"\n{'pipeline':<20}{'build s':>9}{'chunks':>8}{'chunks/s':>10}{'peak MB':>9}  stages")
    for r in results:
        stages = " ".join(f"{k}={v:.1f}" for k, v in r["stages"].items())
        cols = f"{r['build_s']:>9.1f}{r['chunks']:>8}{r['chunks_per_s']:>10.1f}{r['peak_rss_mb']:>9.0f}"
        print(f"{r['name']:<20}{cols}  {stages}")
    print(f"\nbuild time ratio ragcds / llamaindex-default: {ours['build_s'] / base['build_s']:.2f}x")
    print(f"peak memory ratio ragcds / llamaindex-default: {ours['peak_rss_mb'] / base['peak_rss_mb']:.2f}x")
    verdict = "met" if ours["build_s"] <= TARGET_S and ours["build_s"] <= base["build_s"] else "NOT met"
    print(f"target full build <= {TARGET_S:.0f} s and no slower than the baseline: {verdict} "
          f"({ours['build_s']:.1f} s vs {base['build_s']:.1f} s; model load {ours['model_load_s']:.1f} s extra)")


if __name__ == "__main__":
    main()
