"""Rank fusion for hybrid retrieval: pure functions over whole-index score arrays, each with its own test.

Chunk level: RRF of dense and BM25 ranks. Section level: RRF of the section's best chunk and its section unit,
plus the section the question names and a demotion of sections for another population. Final chunk score: the
chunk's RRF plus the RRF term of its section's rank (see docs/retrieval.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from ragcds.config import RetrieveSettings
from ragcds.index.lexical import tokenize


def ranks_of(scores: np.ndarray, positive_only: bool = False) -> np.ndarray:
    """Rank (1 = best) of every item under ``scores``; ties keep row order. With ``positive_only`` an item
    scoring 0 or less gets rank 0, meaning *not ranked* (a BM25 score of 0 shares no word with the query)."""
    order = np.argsort(-scores, kind="stable")
    r = np.empty(len(scores), dtype=np.int64)
    r[order] = np.arange(1, len(scores) + 1)
    if positive_only:
        r[scores <= 0] = 0
    return r


def rrf_ranks(rank_arrays: Sequence[np.ndarray], k: int = 60, weights: Sequence[float] | None = None) -> np.ndarray:
    """Reciprocal-rank fusion over full rank arrays (0 = not ranked): Σ w_i / (k + rank_i)."""
    weights = weights or [1.0] * len(rank_arrays)
    out = np.zeros(len(rank_arrays[0]), dtype=np.float64)
    for r, w in zip(rank_arrays, weights, strict=True):
        out += np.where(r > 0, w / (k + np.maximum(r, 1)), 0.0)
    return out


def best_per_group(values: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Max of ``values`` within each group (row i belongs to group ``group[i]``); -inf for an empty group."""
    out = np.full(n_groups, -np.inf)
    np.maximum.at(out, group, values)
    return out


def named_boost(section: np.ndarray, named: np.ndarray, names: Sequence[str], candidates: int) -> np.ndarray:
    """1 for each section the question names that is among the top ``candidates`` sections and has no
    descendant ranked above it (naming "Hepatitis B" while a sub-section of it leads keeps that sub-section
    first); 0 elsewhere."""
    order = np.argsort(-section, kind="stable")[:candidates]
    out = np.zeros(len(section))
    for pos, row in enumerate(order):
        if named[row] > 0 and not any(names[r].startswith(names[row] + ".") for r in order[:pos]):
            out[row] = 1.0
    return out


def fuse(dense: np.ndarray, bm25: np.ndarray, unit_dense: np.ndarray | None, chunk_unit: np.ndarray,
         n_units: int, s: RetrieveSettings,
         named: np.ndarray | None = None, names: Sequence[str] | None = None,
         demote: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Explicit two-level fusion (pure; scores already hub-adjusted where wanted).

    1. chunk level: ``c = RRF(dense rank, BM25 rank)``;
    2. section level: ``S = RRF(rank of the section's best chunk, unit dense rank × unit_weight)``;
    3. final chunk score: ``c + section_weight / (k + rank of its section under S)``.
    Returns (final chunk scores, section scores)."""
    chunk = rrf_ranks([ranks_of(dense), ranks_of(bm25, positive_only=True)], s.rrf_k,
                      [s.dense_weight, s.bm25_weight])
    best = best_per_group(chunk, chunk_unit, n_units)
    arms = [ranks_of(best)]
    weights = [1.0]
    if unit_dense is not None:
        arms.append(ranks_of(unit_dense))
        weights.append(s.unit_weight)
    section = rrf_ranks(arms, s.rrf_k, weights)
    if demote is not None:  # sections written only for another population than the question's patient
        section = np.where(demote, section * s.population_factor, section)
    if named is not None and named.any():
        section = section + s.named_weight / (s.rrf_k + 1) * named_boost(section, named, names or [],
                                                                       s.named_candidates)
    section[~np.isfinite(best)] = 0.0  # a section without chunks is never listed
    final = chunk + s.section_weight / (s.rrf_k + ranks_of(section)[chunk_unit])
    return final, section


def word_coverage(holders: Sequence[np.ndarray], n_docs: int, members: Sequence[np.ndarray]) -> np.ndarray:
    """For each candidate section (``members``: a boolean mask over the chunks, true for those of it and its
    sub-sections), the share of the question's word weight its text holds: Σ idf of the question's words found
    in it / Σ idf of them all (``holders``: the rows of the chunks holding each word; idf = log(n_docs / (1 +
    holders)), at least 0)."""
    idf = np.array([max(np.log(n_docs / (1 + len(h))), 0.0) for h in holders])
    total = float(idf.sum())
    if total <= 0:
        return np.zeros(len(members))
    found = np.array([[bool(m[h].any()) for h in holders] for m in members], dtype=np.float64)
    return found @ idf / total


def coverage_rerank(section: np.ndarray, rows: Sequence[int], coverage: np.ndarray, sizes: Sequence[int],
                    weight: float, size_exponent: float) -> np.ndarray:
    """Section scores with the candidates ``rows`` (the top of the ranking) re-scored by how much of the
    question their text covers: ``S_i + weight × S_top × coverage_i / size_i ** size_exponent`` (``size``: the
    candidate's chunks, so a long general section does not win by length alone). Only adds, so the candidates
    stay above every other section: a presentation meets the section that describes all its findings, not
    only the one whose single passage is closest."""
    out = section.copy()
    if len(rows) and weight:
        rows = np.asarray(rows)
        per_size = np.asarray(coverage) / np.maximum(np.asarray(sizes, dtype=np.float64), 1.0) ** size_exponent
        out[rows] = section[rows] + weight * section[rows[0]] * per_size
    return out


PREFIX_WORDS = 3  # the start of a title this long names it too


class NamedSections:
    """Which sections a question names: a title (or one of its ``/``-alternatives, ``Complicated/Severe
    Malaria`` → ``Severe Malaria``) whose stemmed words stand together in the question, or the first
    PREFIX_WORDS or more words of a title ("summary of medical eligibility" for *Summary of Medical Eligibility
    for Contraceptives*) when no whole title stands in the same words. Only the most specific names count:
    ``severe malaria`` names §2.5.2.2, not also §2.5.2 ``Malaria``."""

    def __init__(self, titles: Sequence[str], min_words: int = 2):
        self.min_words = min_words
        self.names: list[list[tuple[str, ...]]] = []
        # first word → (name, row, whole title?)
        self._by_first: dict[str, list[tuple[tuple[str, ...], int, bool]]] = {}
        for row, t in enumerate(titles):
            bare = re.sub(r"\([^)]*\)", " ", t)  # "(Acute)", "(HE)": qualifiers and acronyms name nothing
            alts = {bare, *re.split(r"\s*/\s*|\s+or\s+", bare)}
            whole = {n for n in {tuple(tokenize(a)) for a in alts} if len(n) >= self.min_words}
            starts = {n[:k] for n in whole for k in range(max(PREFIX_WORDS, self.min_words), len(n))} - whole
            self.names.append(sorted(whole))
            for n in whole:
                self._by_first.setdefault(n[0], []).append((n, row, True))
            for n in starts:
                self._by_first.setdefault(n[0], []).append((n, row, False))

    def named(self, question: str) -> np.ndarray:
        """Length (in words) of the longest name of each section found in the question, 0 when unnamed; only
        names not inside a longer found name are kept, and a title's start only where no whole title stands."""
        q = tokenize(question)
        found = [(i, i + len(n), row, whole) for i, word in enumerate(q)
                 for n, row, whole in self._by_first.get(word, ()) if tuple(q[i:i + len(n)]) == n]
        titled = {(a, b) for a, b, _, whole in found if whole}
        spans = [(a, b, row) for a, b, row, whole in found if whole or (a, b) not in titled]
        out = np.zeros(len(self.names))
        for a, b, row in spans:
            if not any(a2 <= a and b <= b2 and (b2 - a2) > (b - a) for a2, b2, _ in spans):
                out[row] = max(out[row], b - a)
        return out


def capped(order: np.ndarray, chunk_unit: np.ndarray, cap: int, top: int) -> np.ndarray:
    """The ranking with at most ``cap`` chunks of one section among its first ``top``: a section's further chunks
    wait just below them, so the top five passages show more than one or two sections (a presentation's
    condition is often the second section). Order is kept otherwise; ``cap`` 0 changes nothing."""
    if not cap:
        return order
    first: list[int] = []
    waiting: list[int] = []
    seen: dict[int, int] = {}
    for d in order.tolist():
        if len(first) >= top:
            break
        unit = int(chunk_unit[d])
        if seen.get(unit, 0) < cap:
            seen[unit] = seen.get(unit, 0) + 1
            first.append(d)
        else:
            waiting.append(d)
    head = first + waiting
    moved = np.zeros(len(order), dtype=bool)
    moved[head] = True
    return np.concatenate([np.asarray(head, dtype=order.dtype), order[~moved[order]]])
