"""The ingest pipeline: PDF → pages (printed labels) → cleaned lines → section tree → chunks.

:func:`parse_pdf` runs every ingest stage and hands the result on as one :class:`Parsed` value; the index
build (``ragcds.index.build``), edition diffs and re-indexing all start from it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ragcds.config import Settings
from ragcds.files import sha256_file
from ragcds.ingest.chunk import Chunk, chunk_sections
from ragcds.ingest.clean import CleanPage, CleanStats, clean_pages
from ragcds.ingest.misprints import displaced_openings, relocate
from ragcds.ingest.pdf import Page, read_pdf
from ragcds.ingest.structure import Structure, build_structure

Progress = Callable[[str, int, int], None]  # (stage, done, total)
Chunker = Callable[..., list[Chunk]]
PageReader = Callable[..., list[Page]]  # (pdf, progress=fn(done, total)) -> pages, like ingest.pdf.read_pdf


@dataclass
class Parsed:
    """Everything read from one PDF before indexing: used by build, diff and validation."""

    source: Path
    sha256: str
    pages: list[Page]
    clean: list[CleanPage]
    clean_stats: CleanStats
    structure: Structure
    chunks: list[Chunk]
    seconds: dict[str, float]


def parse_pdf(pdf: Path, settings: Settings, progress: Progress | None = None,
              chunker: Chunker = chunk_sections, reader: PageReader | None = None) -> Parsed:
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    pages = (reader or read_pdf)(pdf, progress=(lambda d, n: progress("read", d, n)) if progress else None)
    seconds["read"] = time.perf_counter() - t
    t = time.perf_counter()
    cleaned, stats = clean_pages(pages, settings.clean)
    structure = build_structure(cleaned)
    structure.misprints = relocate(structure.sections) + displaced_openings(structure.sections)
    seconds["structure"] = time.perf_counter() - t
    t = time.perf_counter()
    labels = {p.pdf_page: p.label for p in pages}
    chunks = chunker(structure.sections, labels, settings.chunk)
    seconds["chunk"] = time.perf_counter() - t
    if progress:
        progress("chunk", len(chunks), len(chunks))
    return Parsed(Path(pdf), sha256_file(Path(pdf)), pages, cleaned, stats, structure, chunks, seconds)
