"""The manifest of an index version (``manifest.json``), read into one typed value.

The file is the inspectable record of a build: ragcds and format version, embedder id/ref/dim, chunker
settings, BM25 tokenizer, source sha256 and page count, build time, stats and the sha256 of every file.
It is written as JSON by the build (``ragcds.index.build`` and ``store.write_version``) and read here, so
every reader uses attributes instead of keys. Missing fields read as empty values; the store refuses a
manifest whose format, embedder or tokenizer does not match this install.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class SourceInfo:
    file: str = ""
    sha256: str = ""
    pages: int | None = None


@dataclass(frozen=True)
class EmbedderInfo:
    id: str = ""
    ref: str = "default"
    dim: int | None = None


@dataclass(frozen=True)
class BuildStats:
    """What the build counted (the gates compare these between versions)."""

    pages: int = 0
    sections: int = 0
    chunks: int = 0
    toc_entries: int = 0
    toc_found: int = 0
    toc_missing: list[str] = field(default_factory=list)
    clean: dict[str, Any] = field(default_factory=dict)  # CleanStats.as_dict(): glyphs mapped / unmapped
    embedded: int = 0
    reused: int = 0

    @property
    def toc_coverage(self) -> float:
        return self.toc_found / self.toc_entries if self.toc_entries else 0.0

    @property
    def unmapped_glyphs(self) -> dict[str, int]:
        return _dict(self.clean.get("unmapped_glyphs"))


@dataclass(frozen=True)
class Manifest:
    version_id: str
    format_version: int | None
    ragcds_version: str
    built_at: str
    source: SourceInfo
    embedder: EmbedderInfo
    tokenizer: str  # the BM25 tokenizer id (ragcds.index.lexical.TOKENIZER_ID at build time)
    section_units: int
    chunk_count: int | None
    files: dict[str, dict]
    stats: BuildStats
    raw: dict = field(repr=False, compare=False)  # the JSON object as read (inspection, unknown keys)

    @classmethod
    def from_dict(cls, d: dict) -> Manifest:
        src, emb, stats = _dict(d.get("source")), _dict(d.get("embedder")), _dict(d.get("stats"))
        known = {k: stats[k] for k in BuildStats.__dataclass_fields__ if k in stats}
        ref = emb.get("ref")
        return cls(
            version_id=str(d.get("version_id", "")),
            format_version=d.get("format_version"),
            ragcds_version=str(d.get("ragcds_version", "")),
            built_at=str(d.get("built_at", "")),
            source=SourceInfo(str(src.get("file", "")), str(src.get("sha256", "")), src.get("pages")),
            embedder=EmbedderInfo(str(emb.get("id", "")), ref if isinstance(ref, str) else "default", emb.get("dim")),
            tokenizer=str(_dict(d.get("lexical")).get("tokenizer", "")),
            section_units=int(_dict(d.get("sections")).get("count", 0) or 0),
            chunk_count=d.get("chunk_count"),
            files=_dict(d.get("files")),
            stats=BuildStats(**known),
            raw=d,
        )
