"""Every setting and default in one place. User state lives under RAGCDS_HOME."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ragcds.clinical import DOSE_PATTERN

INDEX_FORMAT_VERSION = 2  # 2: section units (sections.jsonl, sections.npy, hubness.npy)


def ragcds_home() -> Path:
    """User state (audit log, caches). Defaults to ~/.ragcds; tests point it at a temp dir."""
    return Path(os.environ.get("RAGCDS_HOME") or Path.home() / ".ragcds")


DEFAULT_INDEX_DIR = Path("index")  # the one default index folder; --index or RAGCDS_INDEX override it


def debug_enabled() -> bool:
    return os.environ.get("RAGCDS_DEBUG", "") not in ("", "0", "false")


@dataclass(frozen=True)
class CleanSettings:
    """Text cleaning of extracted pages (running headers/footers, symbol-font glyphs)."""

    # Running header/footer patterns of the UCG (matched against whole stripped lines).
    running_patterns: tuple[str, ...] = (
        r"Uganda Clinical Guidelines 20\d\d\s*(CHAPTER\s*\d+\s*:.*|APPENDI(X|CES)\b.*)?",
        r"CHAPTER\s*\d+\s*:.*",
    )
    # A line whose digit-masked form recurs on at least this share of pages is a running line.
    frequent_line_share: float = 0.3


@dataclass(frozen=True)
class ChunkSettings:
    """Section-bounded chunking. Sizes are in words; MiniLM truncates at 256 word pieces."""

    target_words: int = 150
    max_words: int = 220
    overlap_lines: int = 1

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class RetrieveSettings:
    """Hybrid retrieval (see docs/retrieval.md). Weights and switches were chosen on dev.jsonl and reported on
    dev2.jsonl (bench/retrieval.py)."""

    rrf_k: int = 60
    candidates: int = 50
    dense_weight: float = 1.0
    bm25_weight: float = 1.5
    unit_weight: float = 1.0  # section level: the section unit's dense rank, fused with its best chunk's rank
    named_weight: float = 1.0  # section level: a section whose title the question names (most specific name)
    named_candidates: int = 5  # ... when it is among this many top sections (and no descendant leads)
    population_factor: float = 0.9  # section score × this when written only for another population
    section_weight: float = 1.0  # chunk level: RRF term of the chunk's section rank
    hub_weight: float = 0.5  # dense score minus this × hubness (CSLS-style local scaling)
    lexicon: bool = True  # expand lay words with the guideline's clinical terms (ragcds/data/lexicon.tsv)
    strip_measurements: bool = True  # BM25 ignores a presentation's vitals and ages ("pulse 130", "39.8 °C")
    coverage_weight: float = 0.3  # section level: the top sections re-scored by the question words they hold
    coverage_size_exponent: float = 0.1  # ... per (chunks in the section) ** this
    coverage_top: int = 8  # ... this many (5 until stop 20; 8 chosen on dev)
    sections_listed: int = 10  # sections kept in a Retrieval's section ranking (at least k)
    section_cap: int = 2  # chunks of one section among the first `cap_top` hits (0: no cap); chosen on dev2
    cap_top: int = 5


@dataclass(frozen=True)
class GateSettings:
    """Validation gates run before a re-indexed version goes live (`ragcds index update`)."""

    page_margin: float = 0.02  # new page count may be lower than the previous one by at most this share
    toc_margin: float = 0.02  # contents coverage may drop by at most this (absolute, 0..1)
    max_lost_digit_lines: int = 0  # cleaned page lines with a digit that no chunk contains
    unmapped_glyph_margin: int = 2  # unmapped glyphs allowed beyond the previous version's count
    unmapped_glyph_max: int = 10  # ... and in total when there is no previous version
    dose_margin: float = 0.02  # dose-pattern count may differ from the previous one by this share ...
    dose_slack: int = 5  # ... or by this many matches, whichever is larger
    self_test_top_k: int = 5  # a section's title must retrieve that section within this many hits
    self_test_min_rate: float = 0.9  # for at least this share of the sampled sections
    self_test_sample: int = 100  # sections queried (changed sections first, then a fixed sample); 0 = all
    dose_pattern: str = DOSE_PATTERN  # the one dose grammar (ragcds.clinical)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Settings:
    clean: CleanSettings = field(default_factory=CleanSettings)
    chunk: ChunkSettings = field(default_factory=ChunkSettings)
    retrieve: RetrieveSettings = field(default_factory=RetrieveSettings)
    gates: GateSettings = field(default_factory=GateSettings)
