"""Hybrid retrieval: dense (FAISS) and lexical (BM25) rankings combined by an explicit fusion rule."""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from ragcds.config import RetrieveSettings
from ragcds.errors import CorruptIndex, EmptyQuestion
from ragcds.fusion import (
    NamedSections,
    best_per_group,
    capped,
    coverage_rerank,
    fuse,
    named_boost,
    ranks_of,
    rrf_ranks,
    word_coverage,
)
from ragcds.index import store
from ragcds.index.embedders import Embedder, load_query_embedder
from ragcds.index.lexical import tokenize
from ragcds.index.sections import SectionIndex
from ragcds.index.version import VersionData
from ragcds.ingest.chunk import Chunk
from ragcds.lexicon import Lexicon, strip_measurements
from ragcds.population import Population, conflicts, question_population, section_population

Mode = Literal["hybrid", "dense", "bm25"]
QUERY_CACHE_SIZE = 256
__all__ = ["MODES", "Hit", "HybridRetriever", "Mode", "NamedSections", "Retrieval", "Retriever", "SectionScore",
           "best_per_group", "check_question", "fuse", "load_sections", "named_boost", "rank_sections", "ranks_of",
           "rrf", "rrf_ranks", "top_k"]
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
    # best cosine of the question as asked over the whole index (0 when dense was not run); of its lay-word
    # expansion when the question has no word the guideline never uses (then it decides nothing: policy.out_of_scope)
    top_dense: float = 0.0
    top_bm25: float = 0.0  # best BM25 score of the query BM25 ran (0 when it was not run)
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
    """Sections in the order of their best retrieved chunk, each with the summed score of its chunks (the
    section ranking of the single-arm modes)."""
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
    if not re.search(r"[^\W\d_]", q):  # "123 456": nothing to match a section with
        raise EmptyQuestion(f"the question {q[:40]!r} has no words — ask in words, e.g. ragcds search "
                            "\"signs of severe malaria\"")
    return q


class HybridRetriever:
    """Searches one loaded index version with dense, BM25 or fused (chunk + section level) rankings."""

    def __init__(self, index: store.LoadedIndex, embedder: Embedder, settings: RetrieveSettings | None = None,
                 sections: SectionIndex | None = None, lexicon: Lexicon | None = None):
        self.index = index
        self.embedder = embedder
        self.settings = settings or RetrieveSettings()
        self.sections = sections if sections is not None else load_sections(index)
        self.lexicon = lexicon if lexicon is not None else (Lexicon.load() if self.settings.lexicon else None)
        self._qcache: OrderedDict[str, np.ndarray] = OrderedDict()  # question → vector (a few recent ones)
        self._vectors: np.ndarray | None = None
        self._named: NamedSections | None = None
        self._populations: list[Population] | None = None
        self._subtrees: dict[int, np.ndarray] = {}
        self._conflicts: dict[frozenset[str], np.ndarray] = {}
        units = {u.section: i for i, u in enumerate(self.sections.units)} if self.sections else {}
        names = list(units) or list(dict.fromkeys(c.section for c in index.chunks))
        self._section_names = names
        self._section_row = {n: i for i, n in enumerate(names)}
        self._chunk_unit = np.array([self._section_row[c.section] for c in index.chunks], dtype=np.int64)

    @classmethod
    def open(cls, index_dir: Path, embedder: Embedder | None = None,
             settings: RetrieveSettings | None = None) -> HybridRetriever:
        """Load the live version and a query embedder for the one it was built with (checked against the
        manifest). CURRENT is resolved once, so a swap during loading cannot pair one version's manifest
        with another's files."""
        vdir = store.resolve_version_dir(Path(index_dir))
        manifest = store.read_manifest(vdir)
        embedder = embedder or load_query_embedder(manifest.embedder.ref)
        index = store.load_index(vdir, embedder_id=embedder.id)
        try:
            sections = SectionIndex.load(vdir, len(index.chunks))
        except (OSError, ValueError, KeyError) as exc:
            raise CorruptIndex(f"section units in {vdir} are missing or damaged ({exc}) — rebuild: "
                               f"{store.build_hint(Path(index_dir))}") from exc
        return cls(index, embedder, settings, sections=sections)

    @property
    def named_sections(self) -> NamedSections:
        if self._named is None:
            self._named = NamedSections([self._title(i) for i in range(len(self._section_names))])
        return self._named

    @property
    def chunks(self) -> list[Chunk]:
        return self.index.chunks

    @property
    def vectors(self) -> np.ndarray:
        """Chunk vectors (row i = chunk i), read once from the FAISS index for whole-index scoring."""
        if self._vectors is None:
            self._vectors = self.index.dense.vectors()
        return self._vectors

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

    def expand(self, question: str) -> str:
        """The question with the clinical terms of its lay words (unchanged without a lexicon)."""
        return self.lexicon.expand(question) if self.lexicon else question

    def _dense(self, qvec: np.ndarray, n: int) -> tuple[list[int], dict[int, float]]:
        scores, ids = self.index.dense.search(qvec, n)
        pairs = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
        return [i for i, _ in pairs], dict(pairs)

    def _bm25(self, question: str, n: int) -> tuple[list[int], dict[int, float]]:
        scores, ids = self.index.lexical.search(question, n)
        return [int(i) for i in ids], {int(i): float(s) for i, s in zip(ids, scores, strict=True)}

    @property
    def book(self):
        """The guideline's sections of this index version, with their parts and blocks (built once)."""
        from ragcds.book import book_for

        return book_for(self.index)

    @property
    def vocabulary(self) -> dict:
        """Every word the guideline uses (the BM25 vocabulary of this version)."""
        return self.index.lexical.model.vocab_dict

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
        if mode == "hybrid":
            expanded = [self.expand(q) for q in qs]
            # the question as asked is embedded besides its expansion only when it has a word the guideline never
            # uses: only then does its own closeness to the book (Retrieval.top_dense) decide scope
            asked = [q for q, x in zip(qs, expanded, strict=True) if x == q or self._has_unknown_word(q)]
            texts = list(dict.fromkeys(asked + expanded))
            vecs = self.embed_questions(texts)
            row = {t: i for i, t in enumerate(texts)}
            return [self._hybrid(q, x, vecs[row[q]] if q in row else None, vecs[row[x]], k)
                    for q, x in zip(qs, expanded, strict=True)]
        n = max(k, self.settings.candidates)
        qvecs = self.embed_questions(qs) if mode == "dense" else None
        return [self._single(q, None if qvecs is None else qvecs[i: i + 1], k, n, mode) for i, q in enumerate(qs)]

    def _single(self, q: str, qvec: np.ndarray | None, k: int, n: int, mode: str) -> Retrieval:
        if mode == "dense":
            ranked, scores = self._dense(qvec, n)
        else:
            ranked, scores = self._bm25(q, n)
        hits = tuple(Hit(rank=r, chunk=self.chunks[d], score=scores[d], dense=scores[d] if mode == "dense" else None,
                         bm25=scores[d] if mode == "bm25" else None) for r, d in enumerate(ranked[:k], 1))
        best = scores[ranked[0]] if ranked else 0.0
        return Retrieval(question=q, mode=mode, hits=hits, index_version=self.version_id,
                         top_dense=best if mode == "dense" else 0.0, top_bm25=best if mode == "bm25" else 0.0,
                         sections=rank_sections(hits))

    def _has_unknown_word(self, question: str) -> bool:
        vocab = self.vocabulary
        return any(t.isalpha() and t not in vocab for t in tokenize(question))

    def _hybrid(self, q: str, expanded: str, qvec: np.ndarray | None, xvec: np.ndarray, k: int) -> Retrieval:
        s = self.settings
        cos = self.vectors @ xvec
        lexical_q = strip_measurements(expanded) if s.strip_measurements else expanded
        bm25 = self.index.lexical.scores(lexical_q or expanded)
        sec = self.sections
        if sec is not None:
            dense = cos - s.hub_weight * sec.chunk_hub
            unit = sec.vectors @ xvec - s.hub_weight * sec.unit_hub
        else:
            dense, unit = cos, None
        named = self.named_sections.named(expanded) if s.named_weight else None
        demote = self._population_conflicts(q) if s.population_factor < 1 else None
        final, section = fuse(dense, bm25, unit, self._chunk_unit, len(self._section_names), s, named,
                              self._section_names, demote)
        section = self._rerank_sections(section, q, named)
        order = capped(np.argsort(-final, kind="stable"), self._chunk_unit, s.section_cap, s.cap_top)
        hits = tuple(
            Hit(rank=r, chunk=self.chunks[d], score=float(final[d]), dense=float(cos[d]),
                bm25=float(bm25[d]) if bm25[d] > 0 else None)
            for r, d in enumerate(order[:k].tolist(), 1)
        )
        chunk_rank = np.empty(len(order), dtype=np.int64)
        chunk_rank[order] = np.arange(1, len(order) + 1)
        best_rank = best_per_group(-chunk_rank.astype(np.float64), self._chunk_unit, len(self._section_names))
        listed = [i for i in np.argsort(-section, kind="stable")[: max(k, s.sections_listed)] if section[i] > 0]
        sections = tuple(
            SectionScore(self._section_names[i], self._title(i), float(section[i]), int(-best_rank[i]))
            for i in listed
        )
        raw_cos = cos if expanded == q or qvec is None else self.vectors @ qvec  # the question as asked: scope
        return Retrieval(
            question=q, mode="hybrid", hits=hits, index_version=self.version_id,
            top_dense=float(raw_cos.max()) if len(raw_cos) else 0.0,
            top_bm25=float(bm25.max()) if len(bm25) else 0.0, sections=sections,
        )

    def _rerank_sections(self, section: np.ndarray, question: str, named: np.ndarray | None = None) -> np.ndarray:
        """The top sections re-scored by the share of the question's words their own text holds
        (fusion.coverage_rerank); the chunk ranking is left as fused. A section the question names that leads
        the ranking keeps its place: the words around a name do not outvote it."""
        s = self.settings
        rows = [int(i) for i in np.argsort(-section, kind="stable")[: s.coverage_top] if section[i] > 0]
        if not s.coverage_weight or not rows or (named is not None and named[rows[0]] > 0):
            return section
        lexical = self.index.lexical
        members = [self._subtree(r) for r in rows]
        cover = word_coverage(lexical.postings(question), lexical.num_docs, members)
        return coverage_rerank(section, rows, cover, [int(m.sum()) for m in members], s.coverage_weight,
                               s.coverage_size_exponent)

    def _subtree(self, row: int) -> np.ndarray:
        """Mask over the chunks: true for those of a section and its sub-sections (kept once computed)."""
        got = self._subtrees.get(row)
        if got is None:
            name = self._section_names[row]
            units = [i for i, n in enumerate(self._section_names) if n == name or n.startswith(name + ".")]
            got = self._subtrees[row] = np.isin(self._chunk_unit, units)
        return got

    def _population_conflicts(self, question: str) -> np.ndarray | None:
        qpop = question_population(question)
        if not qpop:
            return None
        if self._populations is None:
            first = {}
            for c in self.chunks:
                first.setdefault(c.section, c)
            self._populations = [section_population(self._title(i), first[n].heading_path)
                                 for i, n in enumerate(self._section_names)]
        got = self._conflicts.get(qpop.groups)  # a handful of distinct populations: each computed once
        if got is None:
            got = self._conflicts[qpop.groups] = np.array([conflicts(qpop, p) for p in self._populations])
        return got

    def printed_pages(self, section: str) -> tuple[str, ...]:
        """The printed page labels a section spans (from its unit, else from its chunks)."""
        row = self._section_row.get(section)
        if row is not None and self.sections is not None:
            return self.sections.units[row].printed_pages
        labels = {p: lab for c in self.chunks if c.section == section
                  for p, lab in zip(c.pdf_pages, c.printed_pages, strict=True)}
        return tuple(labels[p] for p in sorted(labels))

    def _title(self, row: int) -> str:
        if self.sections is not None:
            return self.sections.units[row].title
        name = self._section_names[row]
        return next(c.title for c in self.chunks if c.section == name)


def version_search(embedder: Embedder) -> Callable[[VersionData, Sequence[str], int], list[list[str]]]:
    """A search over one index version that answers, per query, the sections of its top-k hits: what the
    re-indexing gates' retrieval self-test needs (they get it passed in and never import retrieval)."""

    def search(data: VersionData, queries: Sequence[str], k: int) -> list[list[str]]:
        retriever = HybridRetriever(data.open(embedder.id), embedder)
        return [[h.chunk.section for h in hits] for hits in retriever.search_many(list(queries), k=k)]

    return search


def load_sections(index: store.LoadedIndex) -> SectionIndex | None:
    """The version's section units, or None when the loaded index has none (a hand-made LoadedIndex)."""
    path = getattr(index, "path", None)
    if path is None:
        return None
    try:
        return SectionIndex.load(Path(path), len(index.chunks))
    except (OSError, ValueError, KeyError):
        return None
