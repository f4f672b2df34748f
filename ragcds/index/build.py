"""The build pipeline: PDF → pages → sections → chunks → embeddings → a new index version.

Vectors of chunks whose context+text is unchanged are reused from the live version when it was built with
the same embedder (the cache key is embedder id + text hash), so a re-ingest of an errata PDF embeds only
what changed.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ragcds.config import Settings
from ragcds.errors import RagcdsError
from ragcds.index import store
from ragcds.index.dense import DenseIndex
from ragcds.index.embedders import Embedder
from ragcds.index.lexical import TOKENIZER_ID, LexicalIndex
from ragcds.index.sections import SECTION_UNITS_ID, SectionIndex, SectionUnit, section_units
from ragcds.index.version import VersionData
from ragcds.ingest.chunk import Chunk, chunk_sections
from ragcds.ingest.pipeline import Chunker, PageReader, Parsed, Progress, parse_pdf
from ragcds.ingest.structure import Structure


@dataclass
class BuildReport:
    version_id: str
    index_dir: str
    pages: int
    sections: int
    chunks: int
    toc_entries: int
    toc_found: int
    toc_missing: list[str]
    embedded: int  # chunks sent to the embedder
    reused: int  # vectors reused from the previous version
    units_embedded: int = 0  # section units sent to the embedder (in the same call as the chunks)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    clean: dict = field(default_factory=dict)
    activated: bool = True

    @property
    def toc_coverage(self) -> float:
        return self.toc_found / self.toc_entries if self.toc_entries else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "toc_coverage": self.toc_coverage}


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def previous_vectors(previous: VersionData | None, embedder_id: str) -> dict[str, np.ndarray]:
    """text hash → vector from a previous version, if it used the same embedder (its BM25 is not read)."""
    if previous is None or previous.manifest.embedder.id != embedder_id:
        return {}
    try:
        vecs = previous.vectors()
    except RagcdsError:
        return {}
    cache = {text_key(c.index_text): vecs[i] for i, c in enumerate(previous.chunks)}
    try:
        sec = SectionIndex.load(previous.path, len(previous.chunks))
        cache.update({text_key(u.text): sec.vectors[i] for i, u in enumerate(sec.units)})
    except (OSError, ValueError, KeyError):
        pass
    return cache


def live_version(index_dir: Path) -> VersionData | None:
    """The live version read once (None when there is none or it cannot be read)."""
    try:
        return VersionData.load(store.resolve_version_dir(index_dir))
    except RagcdsError:
        return None


@dataclass
class Embedded:
    """The vectors of one build: chunks first, then section units; counts of what went to the embedder."""

    vectors: np.ndarray
    units: list[SectionUnit]
    chunks_embedded: int
    units_embedded: int


def embed_chunks(chunks: list[Chunk], embedder: Embedder, cache: dict[str, np.ndarray],
                 progress: Progress | None) -> Embedded:
    """Vectors for the chunks and their section units; texts in ``cache`` are reused, the rest embedded in
    one call."""
    units = section_units(chunks)
    texts = [c.index_text for c in chunks] + [u.text for u in units]
    keys = [text_key(x) for x in texts]
    todo = [i for i, k in enumerate(keys) if k not in cache]
    vectors = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    for i, k in enumerate(keys):
        if k in cache:
            vectors[i] = cache[k]
    if todo:
        fresh = embedder.embed([texts[i] for i in todo],
                               progress=(lambda d, n: progress("embed", d, n)) if progress else None)
        vectors[todo] = fresh
    elif progress:
        progress("embed", 0, 0)
    embedded = sum(1 for i in todo if i < len(chunks))  # chunks; section units are counted apart
    return Embedded(vectors, units, embedded, len(todo) - embedded)


def build_manifest(parsed: Parsed, embedder: Embedder, embedder_ref: str, settings: Settings,
                   emb: Embedded) -> dict:
    """The manifest's build fields (the store adds version, format and file checksums)."""
    st, n = parsed.structure, len(parsed.chunks)
    return {
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source": {"file": parsed.source.name, "sha256": parsed.sha256, "pages": len(parsed.pages)},
        "embedder": {"id": embedder.id, "ref": embedder_ref, "dim": embedder.dim},
        "chunker": settings.chunk.as_dict(),
        "lexical": {"tokenizer": TOKENIZER_ID, "method": "lucene"},
        "sections": {"units": SECTION_UNITS_ID, "count": len(emb.units)},
        "stats": {
            "pages": len(parsed.pages), "sections": sum(1 for s in st.sections if s.number),
            "chunks": n, "toc_entries": len(st.toc_found) + len(st.toc_missing),
            "toc_found": len(st.toc_found), "toc_missing": st.toc_missing, "clean": parsed.clean_stats.as_dict(),
            "embedded": emb.chunks_embedded, "reused": n - emb.chunks_embedded, "section_units": len(emb.units),
            "section_units_embedded": emb.units_embedded,
        },
    }


def build_index(
    pdf: Path,
    index_dir: Path,
    embedder: Embedder,
    embedder_ref: str,
    settings: Settings | None = None,
    progress: Progress | None = None,
    chunker: Chunker = chunk_sections,
    activate: bool = True,
    before_activate: Callable[[Path], None] | None = None,
    reader: PageReader | None = None,
    previous: VersionData | None = None,
    reuse_live: bool = True,
) -> BuildReport:
    """Build a new version of the index at ``index_dir`` (atomic; the live version is untouched on error).

    Vectors are reused from ``previous`` (else, with ``reuse_live``, from the live version)."""
    settings = settings or Settings()
    index_dir = Path(index_dir)
    with store.writer_lock(index_dir):
        store.remove_stale_temps(index_dir)
        parsed = parse_pdf(pdf, settings, progress, chunker, reader)
        seconds = dict(parsed.seconds)
        if not parsed.chunks:
            raise RagcdsError(f"{pdf} produced no chunks — is it a guideline with numbered sections?")
        t = time.perf_counter()
        if previous is None and reuse_live:
            previous = live_version(index_dir)
        emb = embed_chunks(parsed.chunks, embedder, previous_vectors(previous, embedder.id), progress)
        n = len(parsed.chunks)
        dense = DenseIndex.build(emb.vectors[:n])
        sections = SectionIndex.build(parsed.chunks, emb.units, emb.vectors[n:], emb.vectors[:n])
        seconds["embed"] = time.perf_counter() - t
        t = time.perf_counter()
        lexical = LexicalIndex.build([c.index_text for c in parsed.chunks])
        seconds["bm25"] = time.perf_counter() - t
        manifest = build_manifest(parsed, embedder, embedder_ref, settings, emb)
        t = time.perf_counter()
        version_id = store.write_version(
            index_dir, parsed.chunks, dense, lexical, manifest,
            extra_json={"structure.json": structure_json(parsed.structure)},
            extra_jsonl={"pages.jsonl": [
                {"pdf_page": p.pdf_page, "label": p.label, "lines": list(p.lines)} for p in parsed.clean
            ]},
            activate=activate, before_activate=before_activate, write_extra=sections.save,
        )
        seconds["write"] = time.perf_counter() - t
        return build_report(version_id, index_dir, manifest["stats"], seconds, activate)


def build_report(version_id: str, index_dir: Path, stats: dict, seconds: dict[str, float],
                 activated: bool) -> BuildReport:
    return BuildReport(
        version_id=version_id, index_dir=str(index_dir), pages=stats["pages"], sections=stats["sections"],
        chunks=stats["chunks"], toc_entries=stats["toc_entries"], toc_found=stats["toc_found"],
        toc_missing=stats["toc_missing"], embedded=stats["embedded"], reused=stats["reused"],
        units_embedded=stats["section_units_embedded"], stage_seconds=seconds, clean=stats["clean"],
        activated=activated,
    )


def structure_json(st: Structure) -> dict:
    return {
        "toc": [asdict(e) for e in st.toc],
        "toc_found": st.toc_found,
        "toc_missing": st.toc_missing,
        "misprints": st.misprints,
        "sections": [
            {"number": s.number, "title": s.title, "heading_path": list(s.heading_path), "pdf_pages": s.pdf_pages,
             "indexable": s.indexable}
            for s in st.sections
        ],
    }
