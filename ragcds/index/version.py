"""One index version read once into a typed value, for the stages that compare or check versions (the
re-indexing gates, change counts, edition diffs, vector reuse) instead of each re-reading the files."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ragcds.files import read_jsonl
from ragcds.index import store
from ragcds.index.manifest import BuildStats, Manifest
from ragcds.ingest.chunk import Chunk


@dataclass
class VersionData:
    """A version directory's manifest, chunks (checked against the manifest), cleaned pages and structure."""

    path: Path
    manifest: Manifest
    chunks: list[Chunk]
    pages: list[dict] = field(default_factory=list)  # {pdf_page, label, lines}
    structure: dict = field(default_factory=dict)  # structure.json: contents, sections

    @classmethod
    def load(cls, vdir: Path) -> VersionData:
        vdir = Path(vdir)
        manifest = store.read_manifest(vdir)
        pages = read_jsonl(vdir / "pages.jsonl") if (vdir / "pages.jsonl").exists() else []
        structure_file = vdir / "structure.json"
        structure = json.loads(structure_file.read_text(encoding="utf-8")) if structure_file.exists() else {}
        return cls(vdir, manifest, store.read_chunks(vdir, manifest), pages, structure)

    @property
    def version_id(self) -> str:
        return self.manifest.version_id or self.path.name

    @property
    def stats(self) -> BuildStats:
        return self.manifest.stats

    def vectors(self) -> np.ndarray:
        """The chunks' dense vectors (row i = chunk i); the BM25 arrays are not read."""
        return store.read_dense(self.path, self.manifest).vectors()

    def open(self, embedder_id: str | None = None) -> store.LoadedIndex:
        """The version ready for search, reusing the chunks already read."""
        return store.open_version(self.path, self.manifest, embedder_id, chunks=self.chunks)
