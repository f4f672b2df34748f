"""Section-level retrieval units: what a presentation should meet.

A question that describes a patient (findings, history) is about a condition; the part of the book it should
meet is that condition's own *clinical features* (and its title and opening definition), not a passage that
shares a drug or a setting word. Each section gets one unit: its title, then its "Clinical features" block
(bullets under that sub-heading, up to the next recurring sub-heading such as "Management"); a section with
no such block (charts, procedures) uses its opening text. Units are built from the chunks alone, embedded
at build time, and stored in the version beside the chunks:

    sections.jsonl      one unit per line (section, title, heading path, pages, unit text)
    sections.npy        unit vectors, row i = line i (float32, loaded without pickle)
    hubness.npy         per chunk, then per unit: mean cosine to its 10 nearest *other* sections' units

Hubness (how close a passage sits to many conditions' features at once: the IMCI charts, newborn checklists)
is subtracted from dense scores in fused retrieval, the local scaling of Conneau et al. (CSLS, 2018).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ragcds.files import read_jsonl
from ragcds.ingest.chunk import Chunk

UNITS_FILE = "sections.jsonl"
VECTORS_FILE = "sections.npy"
HUBNESS_FILE = "hubness.npy"
SECTION_UNITS_ID = "ragcds-section-units-v1"
HUB_NEIGHBOURS = 10
UNIT_WORDS = 180  # MiniLM reads 256 word pieces; the title comes first

# Recurring sub-headings (counted in ../shared/notes/ucg-structure.md): where a block starts and ends.
FEATURE_HEADINGS = frozenset({"clinical features", "clinical presentation", "signs and symptoms", "features"})
END_HEADINGS = frozenset({
    "management", "investigations", "investigation", "differential diagnosis", "prevention", "treatment",
    "complications", "treatment loc", "causes", "cause", "risk factors", "predisposing factors",
    "causes/risk factors", "note", "notes", "caution", "general measures", "first aid", "monitoring",
})


@dataclass(frozen=True)
class SectionUnit:
    section: str
    title: str
    heading_path: tuple[str, ...]
    pdf_pages: tuple[int, ...]
    printed_pages: tuple[str, ...]
    text: str  # what the embedder sees

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(heading_path=list(self.heading_path), pdf_pages=list(self.pdf_pages),
                 printed_pages=list(self.printed_pages))
        return d

    @classmethod
    def from_dict(cls, d: dict) -> SectionUnit:
        return cls(d["section"], d["title"], tuple(d["heading_path"]), tuple(d["pdf_pages"]),
                   tuple(d["printed_pages"]), d["text"])


def split_blocks(text: str) -> tuple[list[str], list[str]]:
    """(opening lines before the first recurring sub-heading, lines of the clinical-features block)."""
    lead: list[str] = []
    features: list[str] = []
    where = "lead"
    for line in text.splitlines():
        s = line.strip()
        key = s.lower().rstrip(":")
        if key in FEATURE_HEADINGS:
            where = "features"
        elif key in END_HEADINGS:
            where = "other"
        elif s and not s.upper().startswith("ICD"):
            (lead if where == "lead" else features if where == "features" else []).append(s)
    return lead, features


def _words(lines: Sequence[str], n: int) -> str:
    return " ".join(" ".join(lines).split()[:n])


def section_units(chunks: Sequence[Chunk]) -> list[SectionUnit]:
    """One unit per section, in the order sections first appear among the chunks."""
    groups: dict[str, list[Chunk]] = {}
    for c in chunks:
        groups.setdefault(c.section, []).append(c)
    units = []
    for section, cs in groups.items():
        lead, features = split_blocks("\n".join(c.text for c in cs))
        body = _words(features or lead, UNIT_WORDS)
        pages = sorted({p for c in cs for p in c.pdf_pages})
        labels = {p: lab for c in cs for p, lab in zip(c.pdf_pages, c.printed_pages, strict=True)}
        units.append(SectionUnit(section, cs[0].title, cs[0].heading_path, tuple(pages),
                                 tuple(labels.get(p, "") for p in pages), f"{cs[0].title}. {body}".strip()))
    return units


def hubness(chunk_vecs: np.ndarray, unit_vecs: np.ndarray, chunk_unit: np.ndarray,
            neighbours: int = HUB_NEIGHBOURS) -> tuple[np.ndarray, np.ndarray]:
    """Mean cosine of each chunk (and each unit) to its ``neighbours`` nearest units of other sections."""

    def mean_top(sims: np.ndarray, own: np.ndarray) -> np.ndarray:
        sims = sims.copy()
        sims[np.arange(len(sims)), own] = -np.inf
        n = min(neighbours, max(1, sims.shape[1] - 1))
        top = -np.partition(-sims, n - 1, axis=1)[:, :n]
        return np.where(np.isfinite(top), top, 0.0).mean(1).astype(np.float32)

    if len(unit_vecs) < 2:
        return np.zeros(len(chunk_vecs), np.float32), np.zeros(len(unit_vecs), np.float32)
    return (mean_top(chunk_vecs @ unit_vecs.T, chunk_unit),
            mean_top(unit_vecs @ unit_vecs.T, np.arange(len(unit_vecs))))


@dataclass
class SectionIndex:
    """The section units of one version with their vectors, and the hubness of chunks and units."""

    units: list[SectionUnit]
    vectors: np.ndarray
    chunk_hub: np.ndarray
    unit_hub: np.ndarray

    @classmethod
    def build(cls, chunks: Sequence[Chunk], units: list[SectionUnit], unit_vecs: np.ndarray,
              chunk_vecs: np.ndarray) -> SectionIndex:
        row = {u.section: i for i, u in enumerate(units)}
        chunk_hub, unit_hub = hubness(chunk_vecs, unit_vecs, np.array([row[c.section] for c in chunks]))
        return cls(units, np.asarray(unit_vecs, np.float32), chunk_hub, unit_hub)

    def save(self, vdir: Path) -> None:
        with (vdir / UNITS_FILE).open("w", encoding="utf-8") as fh:
            for u in self.units:
                fh.write(json.dumps(u.to_dict(), ensure_ascii=False) + "\n")
        np.save(vdir / VECTORS_FILE, self.vectors, allow_pickle=False)
        np.save(vdir / HUBNESS_FILE, np.concatenate([self.chunk_hub, self.unit_hub]), allow_pickle=False)

    @classmethod
    def load(cls, vdir: Path, n_chunks: int) -> SectionIndex:
        units = [SectionUnit.from_dict(d) for d in read_jsonl(vdir / UNITS_FILE)]
        vectors = np.load(vdir / VECTORS_FILE, allow_pickle=False)
        hub = np.load(vdir / HUBNESS_FILE, allow_pickle=False)
        if len(vectors) != len(units) or len(hub) != n_chunks + len(units):
            raise ValueError(f"{len(units)} section units, {len(vectors)} vectors, {len(hub)} hubness values "
                             f"for {n_chunks} chunks")
        return cls(units, vectors, hub[:n_chunks], hub[n_chunks:])
