"""What a model is given: prompt tokens per answer and the share of key facts the prompt carries, for the
focused prompt (the resolved section's relevant parts first, fenced, one character budget) against the
previous prompt (the top-5 retrieved chunks, up to 1200 characters each), on both dev sets in one run.

    python bench/prompt.py [--index index] [--sets dev,dev2]

Tokens are counted with the Gemma 3 tokenizer (MedGemma's), from the packaged Gemma 3 270M GGUF; prompts are
rendered with the Gemma turn format (no system role: the rules are folded into the user turn).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from ragcds.evaluate.dataset import load_questions  # noqa: E402
from ragcds.evaluate.metrics import key_fact_recall  # noqa: E402
from ragcds.generate import compose  # noqa: E402
from ragcds.generate.answer import PROMPT_SECTION, Options, decide_for  # noqa: E402
from ragcds.generate.prompt import build_messages, format_passages, render_fallback  # noqa: E402
from ragcds.policy import widened  # noqa: E402
from ragcds.retrieve import HybridRetriever  # noqa: E402

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "eval"


def gemma_tokenizer():
    from transformers import AutoTokenizer

    from ragcds.generate.backends.models import gemma3_270m_path

    path = gemma3_270m_path()
    return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)


def previous_prompt(question: str, hits) -> str:
    """The prompt before issue 9: the top-5 chunks whole (1200 characters each), no shared budget."""
    msgs = build_messages(question, hits[:5], "prose", rag=True)
    msgs[1]["content"] = (f"Passages from the UCG 2023:\n\n{format_passages(hits[:5], 1200, 10**6)}\n\n"
                          f"Question: {question}")
    return render_fallback(msgs, "gemma3")


def focused_prompt(question: str, retrieval, retriever) -> str:
    opts = Options(k=5)
    decision = decide_for(question, retrieval, retriever, opts)
    view = widened(decision, question, retriever.book, PROMPT_SECTION)
    passages = compose.excerpt_passages(view, retrieval, opts.k, retriever.book)
    msgs = build_messages(question, passages, "prose", rag=True, treatment=decision.ask.treatment)
    return render_fallback(msgs, "gemma3")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", default="index")
    ap.add_argument("--sets", default="dev,dev2")
    args = ap.parse_args()
    tok = gemma_tokenizer()
    retriever = HybridRetriever.open(Path(args.index))
    print("| set | prompt | tokens p50 | tokens p95 | ≤ 600 tokens | key facts carried |")
    print("|---|---|---|---|---|---|")
    for name in args.sets.split(","):
        qs = [q for q in load_questions(SHARED / f"{name}.jsonl") if q.kind != "out_of_scope"]
        rows: dict[str, list[tuple[int, float]]] = {"previous (top-5 chunks)": [], "focused (resolved section)": []}
        for q in qs:
            r = retriever.retrieve(q.question, k=10)
            for label, text in (("previous (top-5 chunks)", previous_prompt(q.question, r.top(5))),
                                ("focused (resolved section)", focused_prompt(q.question, r, retriever))):
                n = len(tok(text, add_special_tokens=False)["input_ids"])
                rows[label].append((n, key_fact_recall(text, q.key_facts)[0] or 0.0))
        for label, vals in rows.items():
            toks = sorted(n for n, _ in vals)
            p95 = toks[int(0.95 * (len(toks) - 1))]
            share = sum(n <= 600 for n in toks) / len(toks)
            facts = statistics.mean(f for _, f in vals)
            print(f"| {name} ({len(qs)}) | {label} | {statistics.median(toks):.0f} | {p95} | {share:.2f} | "
                  f"{facts:.3f} |")


if __name__ == "__main__":
    main()
