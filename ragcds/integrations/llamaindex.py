"""ragcds retrieval as a LlamaIndex ``BaseRetriever``, so LlamaIndex query engines can use UCG passages.

    from ragcds.integrations.llamaindex import UCGRetriever
    from llama_index.core.query_engine import RetrieverQueryEngine
    engine = RetrieverQueryEngine.from_args(UCGRetriever.from_index("index"), llm=my_llm)

Each node carries the citation metadata (section, title, printed and PDF pages, citation string).
"""

from __future__ import annotations

from pathlib import Path

from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from ragcds.retrieve import Hit, HybridRetriever, Mode


def hit_to_node(hit: Hit) -> NodeWithScore:
    c = hit.chunk
    node = TextNode(
        id_=c.chunk_id,
        text=c.text,
        metadata={
            "section": c.section, "title": c.title, "citation": c.citation(),
            "printed_pages": ", ".join(c.printed_pages), "pdf_pages": ", ".join(map(str, c.pdf_pages)),
            "heading_path": " › ".join(c.heading_path),
        },
        excluded_embed_metadata_keys=["pdf_pages", "printed_pages"],
    )
    return NodeWithScore(node=node, score=float(hit.score))


class UCGRetriever(BaseRetriever):
    """Hybrid (or dense / BM25) UCG retrieval behind LlamaIndex's retriever interface."""

    def __init__(self, retriever: HybridRetriever, k: int = 5, mode: Mode = "hybrid"):
        super().__init__()
        self._ragcds = retriever
        self._k = k
        self._mode = mode

    @classmethod
    def from_index(cls, index_dir: str | Path, k: int = 5, mode: Mode = "hybrid") -> UCGRetriever:
        return cls(HybridRetriever.open(Path(index_dir)), k=k, mode=mode)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [hit_to_node(h) for h in self._ragcds.search(query_bundle.query_str, k=self._k, mode=self._mode)]
