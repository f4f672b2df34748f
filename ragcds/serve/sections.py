"""A section's text with its printed pages, built from one loaded index version ("open the book here").

A section's chunks, in file order, concatenated give the section's lines (chunks do not overlap). Each chunk is
split into page blocks with the cleaned page lines of the version (pages.jsonl) when it spans pages, so the
page can scroll to the cited printed page; without pages.jsonl a block is a whole chunk.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ragcds.book import enclosing
from ragcds.errors import SectionNotFound
from ragcds.files import read_jsonl
from ragcds.ingest.chunk import Chunk


@dataclass(frozen=True)
class SectionTable:
    """Section number → chunk rows (file order) of one index version, and the page lines to split them."""

    rows: dict[str, list[int]]
    page_lines: dict[int, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def build(cls, chunks: Sequence[Chunk], version_dir: Path | None = None) -> SectionTable:
        rows: dict[str, list[int]] = {}
        for i, c in enumerate(chunks):
            if c.section:
                rows.setdefault(c.section, []).append(i)
        return cls(rows, read_page_lines(version_dir) if version_dir else {})


def read_page_lines(version_dir: Path) -> dict[int, frozenset[str]]:
    """pdf page → its cleaned lines, from the version's pages.jsonl ({} when the file is absent)."""
    path = Path(version_dir) / "pages.jsonl"
    if not path.exists():
        return {}
    return {int(r["pdf_page"]): frozenset(r.get("lines", ())) for r in read_jsonl(path)}


def page_blocks(chunk: Chunk, page_lines: dict[int, frozenset[str]]) -> list[dict]:
    """The chunk's lines grouped by the page they are printed on (in order; a line found on no page stays
    on the current one)."""
    pages = list(zip(chunk.pdf_pages, chunk.printed_pages, strict=False)) or [(0, "")]
    groups: list[list[str]] = [[] for _ in pages]
    cur = 0
    for line in chunk.text.split("\n"):
        if len(pages) > 1 and page_lines:
            cur = next((j for j in range(cur, len(pages)) if line in page_lines.get(pages[j][0], ())), cur)
        groups[cur].append(line)
    return [
        {"chunk_id": chunk.chunk_id, "subheading": chunk.subheading, "pdf_page": pdf, "printed_page": printed,
         "text": "\n".join(lines)}
        for (pdf, printed), lines in zip(pages, groups, strict=True) if lines
    ]


def _ref(chunks: Sequence[Chunk], table: SectionTable, number: str) -> dict | None:
    rows = table.rows.get(number)
    return {"section": number, "title": chunks[rows[0]].title} if rows else None


def _span(printed: list[str]) -> str:
    if not printed:
        return ""
    return f", p. {printed[0]}" if len(printed) == 1 else f", pp. {printed[0]}–{printed[-1]}"


def section_view(number: str, chunks: Sequence[Chunk], table: SectionTable, version_id: str) -> dict:
    """The JSON of `GET /v1/sections/{number}`: text, page blocks, printed pages, parent and sub-sections."""
    number = number.strip().lstrip("§")
    rows = table.rows.get(number)
    if not rows:
        raise SectionNotFound(
            f"no section {number!r} in index version {version_id} — use a number cited in an answer "
            "(e.g. 2.5.2.2), or find it with POST /v1/search"
        )
    own = [chunks[i] for i in rows]
    blocks = [b for c in own for b in page_blocks(c, table.page_lines)]
    pdf_pages = sorted({p for c in own for p in c.pdf_pages})
    printed = list(dict.fromkeys(p for c in own for p in c.printed_pages))
    prefix = number + "."
    children = [
        _ref(chunks, table, n) for n in table.rows if n.startswith(prefix) and "." not in n[len(prefix):]
    ]
    # where the book prints it (a misnumbered §9.1.1b stands under §9.2), else from the number
    parent_number = enclosing(own[0].heading_path, table.rows) or number.rpartition(".")[0]
    return {
        "section": number,
        "title": own[0].title,
        "heading_path": list(own[0].heading_path),
        "index_version": version_id,
        "printed_pages": printed,
        "pdf_pages": pdf_pages,
        "citation": f"§{number} {own[0].title}" + _span([p for p in printed if p]),
        "text": "\n".join(c.text for c in own),
        "blocks": blocks,
        "parent": _ref(chunks, table, parent_number) if parent_number else None,
        "children": [c for c in children if c],
    }
