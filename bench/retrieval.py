"""Retrieval quality on the dev set: recall@1/5/10 and MRR for ragcds bm25 / dense / hybrid and two baselines
(LlamaIndex default pipeline with the same embedder; BM25 over whole pages), side by side.

    python bench/retrieval.py [--index DIR]     # builds a temporary ragcds index when --index is not given

A hit is a passage whose PDF pages intersect the question's gold pages. Target: hybrid recall@5 >= 0.85 and
above every baseline.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import UCG_PDF, dev_rows, llamaindex_default_index, rank_metrics, require  # noqa: E402

TARGET_R5 = 0.85


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, help="an existing ragcds index (default: build one now)")
    args = ap.parse_args()
    from ragcds.index.build import build_index
    from ragcds.index.embedders import load_embedder
    from ragcds.index.lexical import LexicalIndex
    from ragcds.ingest.pdf import read_pdf
    from ragcds.retrieve import HybridRetriever

    rows = dev_rows()
    questions = [r["question"] for r in rows]
    gold = [r["gold_pages"] for r in rows]
    emb = load_embedder("default")
    tmp = tempfile.TemporaryDirectory()
    index = args.index
    if index is None:
        index = Path(tmp.name) / "index"
        print("building the ragcds index ...", file=sys.stderr, flush=True)
        build_index(require(UCG_PDF), index, emb, "default")
    retriever = HybridRetriever.open(index, emb)
    table: dict[str, dict[str, float]] = {}
    for mode in ("bm25", "dense", "hybrid"):
        t = time.perf_counter()
        res = retriever.search_many(questions, k=10, mode=mode)
        table[f"ragcds {mode}"] = {**rank_metrics([[h.chunk.pdf_pages for h in hits] for hits in res], gold),
                                   "ms/q": 1000 * (time.perf_counter() - t) / len(questions)}
    print("building the baselines ...", file=sys.stderr, flush=True)
    pages = read_pdf(require(UCG_PDF))
    li_index, _ = llamaindex_default_index(pages, emb)
    li = li_index.as_retriever(similarity_top_k=10)
    t = time.perf_counter()
    li_ranked = [[[n.node.metadata["pdf_page"]] for n in li.retrieve(q)] for q in questions]
    table["llamaindex default"] = {**rank_metrics(li_ranked, gold),
                                   "ms/q": 1000 * (time.perf_counter() - t) / len(questions)}
    page_bm25 = LexicalIndex.build([p.text for p in pages])
    t = time.perf_counter()
    bm_ranked = [[[int(i) + 1] for i in page_bm25.search(q, 10)[1]] for q in questions]
    table["bm25 whole pages"] = {**rank_metrics(bm_ranked, gold),
                                 "ms/q": 1000 * (time.perf_counter() - t) / len(questions)}
    cols = ["recall@1", "recall@5", "recall@10", "mrr", "ms/q"]
    print(f"\n{len(questions)} dev questions with gold pages\n")
    print("| retriever | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    for name, m in table.items():
        print(f"| {name} | " + " | ".join(f"{m[c]:.3f}" if c != "ms/q" else f"{m[c]:.1f}" for c in cols) + " |")
    hybrid = table["ragcds hybrid"]
    best_base = max(table["llamaindex default"]["recall@5"], table["bm25 whole pages"]["recall@5"])
    print(f"\nhybrid recall@5 / best baseline recall@5: {hybrid['recall@5'] / best_base:.2f}x")
    print(f"hybrid MRR / llamaindex default MRR: {hybrid['mrr'] / table['llamaindex default']['mrr']:.2f}x")
    ok = hybrid["recall@5"] >= TARGET_R5 and hybrid["recall@5"] > best_base
    print(f"target hybrid recall@5 >= {TARGET_R5} and above every baseline: {'met' if ok else 'NOT met'}")
    tmp.cleanup()


if __name__ == "__main__":
    main()
