"""Hybrid retrieval: dense (FAISS) and lexical (BM25) rankings combined by an explicit fusion rule."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from ragcds.config import RetrieveSettings
from ragcds.errors import EmptyQuestion
from ragcds.index import store
from ragcds.index.embedders import Embedder, load_embedder
from ragcds.ingest.chunk import Chunk

Mode = Literal["hybrid", "dense", "bm25"]
QUERY_CACHE_SIZE = 256
MODES: tuple[str, ...] = ("hybrid", "dense", "bm25")


@dataclass(frozen=True)
class Hit:
    """One ranked chunk. ``score`` is the ranking's own score (fused in hybrid, cosine in dense, BM25 in bm25);
    ``dense`` and ``bm25`` keep the chunk's score in each arm when it was among that arm's candidates."""

    rank: int
    chunk: Chunk
    score: float
    dense: float | None = None
    bm25: float | None = None

    def citation(self) -> str:
        return self.chunk.citation()

    def to_json(self) -> dict:
        """The stable JSON shape of a hit (exactly these keys)."""
        c = self.chunk
        return {
            "rank": self.rank, "chunk_id": c.chunk_id, "section": c.section, "title": c.title,
            "pdf_pages": list(c.pdf_pages), "printed_pages": list(c.printed_pages),
            "score": round(float(self.score), 6), "text": c.text,
        }


@dataclass(frozen=True)
class SectionScore:
    """A section ranked by its retrieved chunks: the sum of their scores, and its best chunk's rank."""

    section: str
    title: str
    score: float
    best_rank: int


@dataclass(frozen=True)
class Retrieval:
    """Everything one search found, handed forward so no later stage searches again."""

    question: str
    mode: str
    hits: tuple[Hit, ...]  # best first
    index_version: str = ""
    top_dense: float = 0.0  # best cosine over the whole index (0 when dense was not run)
    top_bm25: float = 0.0  # best BM25 score over the whole index (0 when BM25 was not run)
    sections: tuple[SectionScore, ...] = ()  # section-level ranking, best first

    def top(self, k: int) -> list[Hit]:
        return list(self.hits[:k])


class Retriever(Protocol):
    """The retriever extension point: a question in, a Retrieval (ranked hits and their scores) out."""

    def retrieve(self, question: str, k: int = 10, mode: Mode = "hybrid") -> Retrieval: ...

    def search(self, question: str, k: int = 5, mode: Mode = "hybrid") -> list[Hit]: ...


def rrf(rankings: Sequence[Sequence[int]], k: int = 60, weights: Sequence[float] | None = None) -> dict[int, float]:
    """Reciprocal-rank fusion: score(d) = Σ w_i / (k + rank_i(d)), ranks starting at 1."""
    weights = weights or [1.0] * len(rankings)
    scores: dict[int, float] = {}
    for ranking, w in zip(rankings, weights, strict=True):
        for r, doc in enumerate(ranking, start=1):
            scores[doc] = scores.get(doc, 0.0) + w / (k + r)
    return scores


def top_k(scores: dict[int, float], k: int) -> list[tuple[int, float]]:
    """Highest scores first; ties broken by the lower row id so results are deterministic."""
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]


def rank_sections(hits: Sequence[Hit]) -> tuple[SectionScore, ...]:
    """Sections in the order of their best retrieved chunk, each with the summed score of its chunks."""
    best: dict[str, SectionScore] = {}
    for h in hits:
        c = h.chunk
        prev = best.get(c.section)
        score = float(h.score) + (prev.score if prev else 0.0)
        best[c.section] = SectionScore(c.section, c.title, score, prev.best_rank if prev else h.rank)
    return tuple(sorted(best.values(), key=lambda s: s.best_rank))


def check_question(question: str) -> str:
    q = (question or "").strip()
    if not q:
        raise EmptyQuestion("the question is empty — ask something, e.g. ragcds search \"signs of severe malaria\"")
    return q


class HybridRetriever:
    """Searches one loaded index version with dense, BM25 or fused rankings."""

    def __init__(self, index: store.LoadedIndex, embedder: Embedder, settings: RetrieveSettings | None = None):
        self.index = index
        self.embedder = embedder
        self.settings = settings or RetrieveSettings()
        self._qcache: OrderedDict[str, np.ndarray] = OrderedDict()  # question → vector (a few recent ones)

    @classmethod
    def open(cls, index_dir: Path, embedder: Embedder | None = None,
             settings: RetrieveSettings | None = None) -> HybridRetriever:
        """Load the live version and the embedder it was built with (checked against the manifest).

        CURRENT is resolved once, so a swap during loading cannot pair one version's manifest with another's
        files."""
        vdir = store.resolve_version_dir(Path(index_dir))
        manifest = store.read_manifest(vdir)
        embedder = embedder or load_embedder(manifest["embedder"].get("ref", "default"))
        return cls(store.load_index(vdir, embedder_id=embedder.id), embedder, settings)

    @property
    def chunks(self) -> list[Chunk]:
        return self.index.chunks

    def embed_questions(self, questions: Sequence[str]) -> np.ndarray:
        """Query vectors, reusing recent ones: the answer pipeline searches one question in several modes."""
        todo = [q for q in dict.fromkeys(questions) if q not in self._qcache]
        if todo:
            for q, v in zip(todo, self.embedder.embed(todo), strict=True):
                self._qcache[q] = v
        out = np.stack([self._qcache[q] for q in questions])
        for q in questions:
            self._qcache.move_to_end(q)
        while len(self._qcache) > QUERY_CACHE_SIZE:
            self._qcache.popitem(last=False)
        return out

    def _dense(self, qvec: np.ndarray, n: int) -> tuple[list[int], dict[int, float]]:
        scores, ids = self.index.dense.search(qvec, n)
        pairs = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
        return [i for i, _ in pairs], dict(pairs)

    def _bm25(self, question: str, n: int) -> tuple[list[int], dict[int, float]]:
        scores, ids = self.index.lexical.search(question, n)
        return [int(i) for i in ids], {int(i): float(s) for i, s in zip(ids, scores, strict=True)}

    @property
    def version_id(self) -> str:
        try:
            return str(self.index.version_id)
        except (AttributeError, KeyError):
            return ""

    def search(self, question: str, k: int = 5, mode: Mode = "hybrid") -> list[Hit]:
        return self.retrieve(question, k=k, mode=mode).top(k)

    def search_many(self, questions: Sequence[str], k: int = 5, mode: Mode = "hybrid") -> list[list[Hit]]:
        return [r.top(k) for r in self.retrieve_many(questions, k=k, mode=mode)]

    def retrieve(self, question: str, k: int = 10, mode: Mode = "hybrid") -> Retrieval:
        return self.retrieve_many([question], k=k, mode=mode)[0]

    def retrieve_many(self, questions: Sequence[str], k: int = 10, mode: Mode = "hybrid") -> list[Retrieval]:
        """One Retrieval per question: the top ``k`` hits of ``mode`` with both arms' scores kept."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        qs = [check_question(q) for q in questions]
        n = max(k, self.settings.candidates)
        qvecs = self.embed_questions(qs) if mode != "bm25" else None
        return [self._retrieve_one(q, None if qvecs is None else qvecs[i : i + 1], k, n, mode)
                for i, q in enumerate(qs)]

    def _retrieve_one(self, q: str, qvec: np.ndarray | None, k: int, n: int, mode: str) -> Retrieval:
        dense_ranked, dense_scores = self._dense(qvec, n) if qvec is not None else ([], {})
        bm25_ranked, bm25_scores = self._bm25(q, n) if mode != "dense" else ([], {})
        if mode == "dense":
            ordered = [(d, dense_scores[d]) for d in dense_ranked[:k]]
        elif mode == "bm25":
            ordered = [(d, bm25_scores[d]) for d in bm25_ranked[:k]]
        else:
            s = self.settings
            ordered = top_k(rrf([dense_ranked, bm25_ranked], s.rrf_k, [s.dense_weight, s.bm25_weight]), k)
        hits = tuple(
            Hit(rank=r, chunk=self.chunks[d], score=sc, dense=dense_scores.get(d), bm25=bm25_scores.get(d))
            for r, (d, sc) in enumerate(ordered, 1)
        )
        return Retrieval(
            question=q, mode=mode, hits=hits, index_version=self.version_id,
            top_dense=dense_scores[dense_ranked[0]] if dense_ranked else 0.0,
            top_bm25=bm25_scores[bm25_ranked[0]] if bm25_ranked else 0.0,
            sections=rank_sections(hits),
        )
