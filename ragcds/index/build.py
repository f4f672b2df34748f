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
from ragcds.index.sections import SECTION_UNITS_ID, SectionIndex, section_units
from ragcds.ingest.chunk import chunk_sections
from ragcds.ingest.pipeline import Chunker, PageReader, Progress, parse_pdf
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


def previous_vectors(index_dir: Path, embedder_id: str) -> dict[str, np.ndarray]:
    """text hash → vector from the live version, if it used the same embedder."""
    try:
        old = store.load_index(index_dir)
    except RagcdsError:
        return {}
    if old.manifest["embedder"]["id"] != embedder_id:
        return {}
    vecs = old.dense.vectors()
    cache = {text_key(c.index_text): vecs[i] for i, c in enumerate(old.chunks)}
    try:
        sec = SectionIndex.load(old.path, len(old.chunks))
        cache.update({text_key(u.text): sec.vectors[i] for i, u in enumerate(sec.units)})
    except (OSError, ValueError, KeyError):
        pass
    return cache


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
) -> BuildReport:
    """Build a new version of the index at ``index_dir`` (atomic; the live version is untouched on error)."""
    settings = settings or Settings()
    index_dir = Path(index_dir)
    with store.writer_lock(index_dir):
        store.remove_stale_temps(index_dir)
        parsed = parse_pdf(pdf, settings, progress, chunker, reader)
        seconds = dict(parsed.seconds)
        if not parsed.chunks:
            raise RagcdsError(f"{pdf} produced no chunks — is it a guideline with numbered sections?")
        t = time.perf_counter()
        cache = previous_vectors(index_dir, embedder.id)
        units = section_units(parsed.chunks)
        texts = [c.index_text for c in parsed.chunks] + [u.text for u in units]
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
        n = len(parsed.chunks)
        embedded = sum(1 for i in todo if i < n)  # chunks; section units are counted apart
        dense = DenseIndex.build(vectors[:n])
        sections = SectionIndex.build(parsed.chunks, units, vectors[n:], vectors[:n])
        seconds["embed"] = time.perf_counter() - t
        t = time.perf_counter()
        lexical = LexicalIndex.build(texts[:n])
        seconds["bm25"] = time.perf_counter() - t
        st = parsed.structure
        manifest = {
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "source": {"file": parsed.source.name, "sha256": parsed.sha256, "pages": len(parsed.pages)},
            "embedder": {"id": embedder.id, "ref": embedder_ref, "dim": embedder.dim},
            "chunker": settings.chunk.as_dict(),
            "lexical": {"tokenizer": TOKENIZER_ID, "method": "lucene"},
            "sections": {"units": SECTION_UNITS_ID, "count": len(units)},
            "stats": {
                "pages": len(parsed.pages), "sections": sum(1 for s in st.sections if s.number),
                "chunks": n, "toc_entries": len(st.toc_found) + len(st.toc_missing),
                "toc_found": len(st.toc_found), "toc_missing": st.toc_missing, "clean": parsed.clean_stats.as_dict(),
                "embedded": embedded, "reused": n - embedded, "section_units": len(units),
                "section_units_embedded": len(todo) - embedded,
            },
        }
        t = time.perf_counter()
        version_id = store.write_version(
            index_dir, parsed.chunks, dense, lexical, manifest,
            extra_json={"structure.json": structure_json(st)},
            extra_jsonl={"pages.jsonl": [
                {"pdf_page": p.pdf_page, "label": p.label, "lines": list(p.lines)} for p in parsed.clean
            ]},
            activate=activate, before_activate=before_activate, write_extra=sections.save,
        )
        seconds["write"] = time.perf_counter() - t
        stats = manifest["stats"]
        return BuildReport(
            version_id=version_id, index_dir=str(index_dir), pages=stats["pages"], sections=stats["sections"],
            chunks=stats["chunks"], toc_entries=stats["toc_entries"], toc_found=stats["toc_found"],
            toc_missing=st.toc_missing, embedded=embedded, reused=n - embedded, units_embedded=len(todo) - embedded,
            stage_seconds=seconds, clean=stats["clean"], activated=activate,
        )


def structure_json(st: Structure) -> dict:
    return {
        "toc": [asdict(e) for e in st.toc],
        "toc_found": st.toc_found,
        "toc_missing": st.toc_missing,
        "sections": [
            {"number": s.number, "title": s.title, "heading_path": list(s.heading_path), "pdf_pages": s.pdf_pages,
             "indexable": s.indexable}
            for s in st.sections
        ],
    }
