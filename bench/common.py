"""Shared pieces of the benchmarks: paths, the dev sets, the LlamaIndex default baseline, metric tables."""

from __future__ import annotations

import os
import resource
from collections.abc import Iterable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("RAGCDS_SHARED", REPO.parent / "shared"))
UCG_PDF = Path(os.environ.get("UCG_PDF", SHARED / "corpus" / "ucg-2023.pdf"))
DEV_SET = SHARED / "eval" / "dev.jsonl"
DEV_SETS = (DEV_SET, SHARED / "eval" / "dev2.jsonl")
KINDS = ("fact", "vignette", "treatment")
METRIC_COLUMNS = ("recall@1", "recall@5", "recall@10", "mrr")


def require(path: Path) -> Path:
    if not path.exists():
        raise SystemExit(f"skipped: {path} is absent (put the shared folder beside the repo, or set UCG_PDF)")
    return path


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def dev_sets() -> dict[str, list]:
    """Both development sets (questions with gold pages only), by file stem: dev (63 q), dev2 (199 q)."""
    from ragcds.evaluate.dataset import load_questions

    out = {}
    for path in DEV_SETS:
        out[path.stem] = [q for q in load_questions(require(path)) if q.gold_pages]
    return out


def retrieval_table(questions: Sequence, ranked_pages: Sequence[Sequence[Sequence[int]]],
                    kinds: Iterable[str] = KINDS) -> dict[str, dict[str, float]]:
    """recall@1/5/10 and MRR overall and per kind, with the evaluator's own per-item rule
    (ragcds.evaluate.metrics.retrieval_metrics): a passage hits when its PDF pages meet the gold pages."""
    from ragcds.evaluate.metrics import retrieval_metrics

    items = [(q.kind, retrieval_metrics(q.gold_pages, pages)) for q, pages in zip(questions, ranked_pages,
                                                                                    strict=True)]
    out = {}
    for kind in ("all", *kinds):
        rows = [m for k, m in items if kind in ("all", k)]
        out[kind] = {c: sum(m[c] for m in rows) / max(1, len(rows)) for c in METRIC_COLUMNS}
        out[kind]["n"] = len(rows)
    return out


def llamaindex_embedding(embedder):
    """Our sentence-transformers embedder behind LlamaIndex's BaseEmbedding (same model as ragcds)."""
    from llama_index.core.embeddings import BaseEmbedding

    class _Embedding(BaseEmbedding):
        def _get_query_embedding(self, query: str) -> list[float]:
            return embedder.embed([query])[0].tolist()

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

        def _get_text_embedding(self, text: str) -> list[float]:
            return embedder.embed([text])[0].tolist()

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return embedder.embed(texts).tolist()

    return _Embedding(model_name=embedder.id, embed_batch_size=256)


def llamaindex_default_index(pages, embedder):
    """The LlamaIndex default pipeline: one Document per PDF page, SentenceSplitter, VectorStoreIndex."""
    from llama_index.core import Document, Settings, VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter

    Settings.llm = None
    docs = [Document(text=p.text, metadata={"pdf_page": p.pdf_page}) for p in pages if p.text.strip()]
    nodes = SentenceSplitter().get_nodes_from_documents(docs)
    return VectorStoreIndex(nodes, embed_model=llamaindex_embedding(embedder)), len(nodes)
