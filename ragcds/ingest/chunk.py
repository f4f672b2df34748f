"""Sections → chunks that stay inside one section and keep list items and table rows whole.

Lines are first grouped into units: a unit starts at a bullet, a sub-heading, or after a line that ends a
sentence or is short (a flattened table row); wrapped continuation lines join their unit. Units are packed
into chunks of about ``target_words`` and never split, except a single unit longer than ``max_words``,
which is split between lines (never inside a line). Each chunk carries its heading path and the
sub-heading it falls under ("Management") as retrieval context.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass

from ragcds.config import ChunkSettings
from ragcds.ingest.structure import Section

_BULLET = re.compile(r"^\s*([~•\-–—»¾*]|o|[frwy](?=\s+[A-Z]))\s+")
_SENTENCE_END = re.compile(r"[.:;!?)]\s*$")
SHORT_LINE = 45


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    section: str
    title: str
    heading_path: tuple[str, ...]
    subheading: str
    pdf_pages: tuple[int, ...]
    printed_pages: tuple[str, ...]
    text: str

    @property
    def context(self) -> str:
        path = " › ".join(self.heading_path)
        return f"{path} › {self.subheading}" if self.subheading else path

    @property
    def index_text(self) -> str:
        """What the embedder and BM25 see: heading context, then the text."""
        return f"{self.context}\n{self.text}"

    def citation(self) -> str:
        """`§2.5.2.2 Complicated/Severe Malaria, p. 100` (pp. 100–101 for a span)."""
        head = f"§{self.section} {self.title}" if self.section else self.title
        return f"{head}, {self.pages_label()}"

    def pages_label(self) -> str:
        """`p. 100`, or `pp. 100–101` for a span (printed page labels, PDF pages when there are none)."""
        pages = [p for p in self.printed_pages if p] or [str(p) for p in self.pdf_pages]
        return f"p. {pages[0]}" if len(pages) == 1 else f"pp. {pages[0]}–{pages[-1]}"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["heading_path"] = list(self.heading_path)
        d["pdf_pages"] = list(self.pdf_pages)
        d["printed_pages"] = list(self.printed_pages)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Chunk:
        return cls(
            chunk_id=d["chunk_id"], section=d["section"], title=d["title"],
            heading_path=tuple(d["heading_path"]), subheading=d.get("subheading", ""),
            pdf_pages=tuple(d["pdf_pages"]), printed_pages=tuple(d["printed_pages"]), text=d["text"],
        )


def chunk_id(section: str, pdf_pages: tuple[int, ...], text: str) -> str:
    """Content-addressed: the same section text on the same pages gets the same id in any build."""
    key = f"{section}\x1f{','.join(map(str, pdf_pages))}\x1f{text}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def is_subheading(line: str) -> bool:
    s = line.strip()
    words = s.split()
    return (
        0 < len(words) <= 6 and s[0].isupper() and not _BULLET.match(s) and not re.search(r"\d", s)
        and not _SENTENCE_END.search(s) and not s.isupper() or s in ("TREATMENT LOC",)
    )


def _units(lines: list[tuple[int, str]]) -> list[list[tuple[int, str]]]:
    units: list[list[tuple[int, str]]] = []
    prev = ""
    for page, line in lines:
        starts = (
            not units or _BULLET.match(line) or is_subheading(line) or _SENTENCE_END.search(prev)
            or len(prev.strip()) < SHORT_LINE or is_subheading(prev)
        )
        if starts:
            units.append([(page, line)])
        else:
            units[-1].append((page, line))
        prev = line
    return units


def _words(unit: list[tuple[int, str]]) -> int:
    return sum(len(line.split()) for _, line in unit)


def chunk_section(section: Section, labels: dict[int, str], settings: ChunkSettings) -> list[Chunk]:
    if not section.indexable or not section.lines:
        return []
    pieces: list[tuple[str, list[tuple[int, str]]]] = []  # (subheading, lines)
    cur: list[tuple[int, str]] = []
    cur_sub, sub = "", ""
    for unit in _units(section.lines):
        head = unit[0][1]
        if is_subheading(head) and len(unit) == 1:
            if cur and _words(cur) >= settings.target_words // 2:
                pieces.append((cur_sub, cur))
                cur = []
            sub = head.strip()
            if not cur:
                cur_sub = ""  # the sub-heading line itself opens the chunk
        n = _words(unit)
        if cur and (_words(cur) + n > settings.max_words or _words(cur) >= settings.target_words):
            pieces.append((cur_sub, cur))
            cur, cur_sub = [], sub if not is_subheading(head) else ""
        if n > settings.max_words:  # one giant unit (a long table): split between lines
            for page, line in unit:
                if cur and _words(cur) + len(line.split()) > settings.max_words:
                    pieces.append((cur_sub, cur))
                    cur, cur_sub = [], sub
                cur.append((page, line))
            continue
        cur.extend(unit)
    if cur:
        pieces.append((cur_sub, cur))
    chunks = []
    for subheading, plines in pieces:
        text = "\n".join(line for _, line in plines)
        pages = tuple(sorted({p for p, _ in plines}))
        chunks.append(Chunk(
            chunk_id=chunk_id(section.number, pages, text), section=section.number, title=section.title,
            heading_path=section.heading_path, subheading=subheading, pdf_pages=pages,
            printed_pages=tuple(labels.get(p, "") for p in pages), text=text,
        ))
    return chunks


def chunk_sections(sections: list[Section], labels: dict[int, str], settings: ChunkSettings) -> list[Chunk]:
    out: list[Chunk] = []
    seen: set[str] = set()
    for s in sections:
        for c in chunk_section(s, labels, settings):
            if c.chunk_id not in seen:  # identical text on identical pages in one section: keep one
                seen.add(c.chunk_id)
                out.append(c)
    return out
