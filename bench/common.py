"""Shared pieces of the benchmarks: paths, the dev set, the LlamaIndex default baseline, metric helpers."""

from __future__ import annotations

import json
import os
import resource
from collections.abc import Iterable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("RAGCDS_SHARED", REPO.parent / "shared"))
UCG_PDF = Path(os.environ.get("UCG_PDF", SHARED / "corpus" / "ucg-2023.pdf"))
DEV_SET = SHARED / "eval" / "dev.jsonl"


def require(path: Path) -> Path:
    if not path.exists():
        raise SystemExit(f"skipped: {path} is absent (put the shared folder beside the repo, or set UCG_PDF)")
    return path


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def dev_rows(with_gold: bool = True) -> list[dict]:
    rows = [json.loads(x) for x in require(DEV_SET).read_text().splitlines() if x.strip()]
    return [r for r in rows if r["gold_pages"]] if with_gold else rows


def rank_metrics(ranked_pages: Sequence[Sequence[Iterable[int]]], gold: Sequence[Iterable[int]],
                 ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
    """recall@k and MRR where a hit is a passage whose pages intersect the gold pages."""
    out = {f"recall@{k}": 0.0 for k in ks}
    mrr = 0.0
    for passages, g in zip(ranked_pages, gold, strict=True):
        g = set(g)
        first = next((i for i, pages in enumerate(passages, 1) if g & set(pages)), None)
        for k in ks:
            out[f"recall@{k}"] += 1.0 if first is not None and first <= k else 0.0
        mrr += 1.0 / first if first else 0.0
    n = max(1, len(gold))
    return {**{k: v / n for k, v in out.items()}, "mrr": mrr / n}


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
