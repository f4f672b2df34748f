"""The guideline as a book: each section's own lines, split into its recurring parts (clinical features,
investigations, management, ...) and into blocks that are never cut (a list item, a sentence, a table row),
each with the printed page it stands on.

Built from one loaded index version (its chunks, and pages.jsonl to place each line on its page), once per
version. The answer composer quotes blocks of the resolved section; the decision stage reads sections' titles,
parents and populations here.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Container, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

from ragcds import clinical
from ragcds.ingest.chunk import Chunk
from ragcds.ingest.structure import REPEAT_LETTERS
from ragcds.population import Population, section_population

SHORT_LINE = 45  # a line shorter than this ends its block (table rows, list captions)


@dataclass(frozen=True)
class Block:
    """A unit of a section that is shown whole: wrapped lines joined, never cut."""

    text: str
    part: str  # "intro", "features", "management", ... (clinical.PART_HEADINGS)
    subhead: str  # the nearest sub-heading inside the part ("Management of severe malaria"), or ""
    kind: str  # "item" (bullet), "text" (sentence / table row), "heading"
    pdf_page: int
    printed_page: str
    chunk_id: str
    order: int  # position in the section


@dataclass
class BookSection:
    number: str
    title: str
    heading_path: tuple[str, ...]
    chunks: list[Chunk]
    blocks: list[Block] = field(default_factory=list)

    @property
    def printed_pages(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p for c in self.chunks for p in c.printed_pages if p))

    @property
    def population(self) -> Population:
        return section_population(self.title, self.heading_path)

    def part_names(self) -> list[str]:
        return list(dict.fromkeys(b.part for b in self.blocks if b.kind != "heading"))

    def part(self, name: str) -> list[Block]:
        return [b for b in self.blocks if b.part == name]

    def citation(self, printed: Sequence[str] = ()) -> str:
        pages = [p for p in printed if p] or list(self.printed_pages)
        span = "" if not pages else f", p. {pages[0]}" if len(pages) == 1 else f", pp. {pages[0]}–{pages[-1]}"
        return f"§{self.number} {self.title}{span}"

    @property
    def text(self) -> str:
        return "\n".join(c.text for c in self.chunks)


def _page_of_lines(chunk: Chunk, page_lines: dict[int, frozenset[str]]) -> list[tuple[int, str]]:
    """(pdf page, printed label) of each line of a chunk, found in the version's cleaned page lines."""
    pages = list(zip(chunk.pdf_pages, chunk.printed_pages, strict=False)) or [(0, "")]
    out, cur = [], 0
    for line in chunk.text.split("\n"):
        if len(pages) > 1 and page_lines:
            cur = next((j for j in range(cur, len(pages)) if line in page_lines.get(pages[j][0], ())), cur)
        out.append(pages[cur])
    return out


def _join(prev: str, line: str) -> str:
    """Join a wrapped line to its block: no space after a trailing hyphen or slash (20-/30 → 20-30), digits
    and letters never changed."""
    line = line.strip()
    if prev.endswith(("-", "–", "/")):
        return prev + line
    return f"{prev} {line}"


def _sibling_heading(line: str, subhead: str) -> bool:
    """A heading-like line of the same shape as the current sub-heading ("Moderate dehydration" under "Mild
    dehydration", "Chronic stage" after "Acute stage"): the next sub-heading, never a wrapped line."""
    words, head = line.strip().lower().split(), subhead.lower().split()
    return (len(head) >= 2 and len(words) == len(head) and words[0] != head[0] and words[1:] == head[1:]
            and clinical.looks_like_heading(line))


class _BlockBuilder:
    """Walks a section's lines and cuts them into blocks, tracking the current part and sub-heading. A
    heading-like line stays pending until the next line shows whether it was wrapped text."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.part, self.subhead = "intro", ""
        self.cur: list = []  # [text, kind, pdf, printed, chunk_id]
        self.prev = ""
        self.prev_pdf = 0
        self.boundary = False

    def flush(self) -> None:
        if self.cur:
            text, kind, pdf, printed, cid = self.cur
            if kind == "heading" and not text.isupper():  # column headers (AGE DAY 1 DAY 2) keep the caption
                self.subhead = text.rstrip(":")
            self.blocks.append(Block(text, self.part, self.subhead, kind, pdf, printed, cid, len(self.blocks)))
            self.cur = []

    def add(self, line: str, pdf: int, printed: str, cid: str, next_bullet: bool = False) -> None:
        if not line.strip():
            return
        items = clinical.split_inline_bullets(line)
        if len(items) > 1:
            for item in items:
                self.add(item, pdf, printed, cid)
            return
        part = clinical.part_of_heading(line)
        if part is not None and line.strip().isupper() and _COLUMN_HEAD.match(self.prev.strip()):
            part = None  # an IMCI chart's column header ("CLASSIFY" / "AS" / "MANAGEMENT") opens no part
        # table furniture (HC2, a repeated header) ends nothing and shows nothing; but a treatment table's
        # header ("TREATMENT LOC") is how most UCG sections open their management part
        if clinical.is_loc_noise(line) and (part is None or part == self.part):
            self.boundary = True  # a level-of-care code ends a table row
            return
        # across a row's end or a page break only a plain wrap continues (lower case, or after "and", "of" …)
        new_page = pdf != self.prev_pdf
        hard = self.boundary or (bool(self.cur) and new_page)
        self.boundary, self.prev_pdf = False, pdf
        if part is not None:
            bare = line.strip().rstrip(":")
            # the part's bare heading printed again atop a page ("Management" over the rest of "If enoxaparin not
            # available") continues the sub-part: "Or 333 units/kg SC" is still unfractionated heparin's dose
            running = new_page and part == self.part and bare.lower() in clinical.PART_HEADINGS.get(part, ())
            kept = self.subhead if running else ""
            self.flush()
            self.part, self.subhead = part, ""
            self.cur = [bare, "heading", pdf, printed, cid]
            self.flush()
            if bare.lower() in clinical.PART_HEADINGS.get(part, ()):
                self.subhead = kept
        elif (self.cur and clinical.continues(self.prev, line, hard_break=hard)
              and not _sibling_heading(line, self.subhead)
              and not (next_bullet and _short_heading(line) and not clinical.open_ended(self.prev))):
            self.cur[0] = _join(self.cur[0], clinical.strip_bullet(line) if clinical.is_bullet(line) else line)
            if self.cur[1] == "heading":
                self.cur[1] = "text"
        else:
            self.flush()
            kind = "item" if clinical.is_bullet(line) else "heading" if clinical.looks_like_heading(line) else "text"
            self.cur = [clinical.strip_bullet(line), kind, pdf, printed, cid]
        self.prev = line


_COLUMN_HEAD = re.compile(r"^(CLASSIFY( AS)?|AS|CLINICAL FEA-?TURES( CLASSIFY AS)?)$")
SHORT_HEADING = 40  # characters a heading over a list has at most ("Contraindications", "Bleeding ulcer")
_WORD = re.compile(r"[A-Za-z][a-z]{3,}")  # a word, not a route or a code ("IM or IV", "HC4")


def _short_heading(line: str) -> bool:
    """A short capitalised line without end punctuation ("Contraindications", "Severe cases (>20%)"): when a
    list follows it, it heads the list and does not end the line before it."""
    s = line.strip()
    return (len(s) <= SHORT_HEADING and s[:1].isupper() and clinical.looks_like_heading(s)
            and not clinical.is_bullet(s) and not clinical.has_dose(s) and bool(_WORD.search(s)))


def build_blocks(chunks: Sequence[Chunk], page_lines: dict[int, frozenset[str]]) -> list[Block]:
    b = _BlockBuilder()
    for c in chunks:
        lines = c.text.split("\n")
        for i, (line, (pdf, printed)) in enumerate(zip(lines, _page_of_lines(c, page_lines), strict=True)):
            nxt = next((x for x in lines[i + 1:] if x.strip()), "")
            b.add(line, pdf, printed, c.chunk_id, next_bullet=clinical.is_bullet(nxt))
    b.flush()
    return _dose_tables(_headings_without_content_as_text(b.blocks))


def _headings_without_content_as_text(blocks: list[Block]) -> list[Block]:
    """A heading-like line straight followed by another heading heads nothing: it is content ("Any pitting
    bilateral oedema of feet" in a table of admission criteria) and is shown as a line. Part headings and
    column headers (upper case) are left as they are."""
    out = list(blocks)
    for i, (b, nxt) in enumerate(zip(blocks, blocks[1:], strict=False)):
        if (b.kind == "heading" and nxt.kind == "heading" and b.part == nxt.part and not b.text.isupper()
                and clinical.part_of_heading(b.text) is None and nxt.subhead != b.subhead):
            before = out[i - 1] if i else None
            opens_part = before is not None and before.kind == "heading" and clinical.part_of_heading(before.text)
            prev = before.subhead if before is not None and before.part == b.part and not opens_part else ""
            out[i] = replace(b, kind="text", subhead=prev)
    return out


def without_foreign_headings(blocks: list[Block], names: str, shared: frozenset[str]) -> list[Block]:
    """The blocks less a part heading that names a condition this section never mentions: the book's layout
    template leaves "Management of pneumonia" over the tables of §6.5.4.3 Hepatic Encephalopathy and "Management
    of stable angina" over §4.1.8–§4.1.10 (only a heading the book prints in other sections too, ``shared``). It
    still ends the sub-part before it: its lines have no sub-heading ("Screen patients with liver cirrhosis …"
    is not under "If referral delays")."""
    own = clinical.stems(names)
    foreign = set()
    for b in blocks:
        subject = clinical.stems(_subject(b.text)) if b.kind == "heading" and b.text.rstrip(":") in shared else set()
        if subject and not subject & own and not subject & clinical.stems(
                " ".join(x.text for x in blocks if x.text != b.text)):
            foreign.add(b.text.rstrip(":"))
    if not foreign:
        return blocks
    kept = [b for b in blocks if not (b.kind == "heading" and b.text.rstrip(":") in foreign)]
    return [replace(b, subhead="" if b.subhead in foreign else b.subhead, order=i) for i, b in enumerate(kept)]


_TABLE_TITLE = re.compile(r"^(Dosage|DOSAGE) (of|for|OF|FOR) [^.]*$")  # a title: capitalised, no sentence


def _subject(line: str) -> str:
    """What a part heading or a dose table's title names ("Management of pneumonia" → "pneumonia", "Dosage of IM
    artemether" → "IM artemether"); "" for any other line."""
    if _TABLE_TITLE.match(line.strip()):
        return line.strip().split(" ", 2)[2]
    return clinical.heading_subject(line)


def _dose_tables(blocks: list[Block]) -> list[Block]:
    """A dose table ("Dosage of intravenous artesunate for severe malaria") is one sub-part: its rows, and the
    short cells the text layer sets apart as headings ("First dose: on admission Loading dose", "Third dose At 24
    hours"), sit under its title. The table ends at a part heading, another table's title, a bullet, or a
    heading over bullets ("Preparation of IV or IM artesunate")."""
    out = list(blocks)
    title: Block | None = None
    for i, b in enumerate(blocks):
        nxt = blocks[i + 1] if i + 1 < len(blocks) else None
        if _TABLE_TITLE.match(b.text) and b.kind != "item":
            title = replace(b, kind="heading", subhead=b.text.rstrip(":"))
            out[i] = title
            continue
        ends = (title is None or b.part != title.part or b.kind == "item" or clinical.part_of_heading(b.text)
                or (b.kind == "heading" and nxt is not None and nxt.kind == "item"))
        if ends:
            title = None
            continue
        out[i] = replace(b, kind="text" if b.kind == "heading" and not b.text.isupper() else b.kind,
                         subhead=title.subhead)
    return out


def read_page_lines(version_dir: Path | None) -> dict[int, frozenset[str]]:
    """pdf page → its cleaned lines, from the version's pages.jsonl ({} when absent)."""
    path = Path(version_dir) / "pages.jsonl" if version_dir else None
    if path is None or not path.exists():
        return {}
    out = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            out[int(r["pdf_page"])] = frozenset(r.get("lines", ()))
    return out


class Book:
    """Sections of one index version, by number, with their blocks built on first use."""

    def __init__(self, chunks: Sequence[Chunk], page_lines: dict[int, frozenset[str]] | None = None):
        self._page_lines = page_lines or {}
        self._sections: dict[str, BookSection] = {}
        for c in chunks:
            if not c.section:
                continue
            s = self._sections.get(c.section)
            if s is None:
                s = self._sections[c.section] = BookSection(c.section, c.title, tuple(c.heading_path), [])
            s.chunks.append(c)
        self._lock = threading.Lock()
        self._shared: frozenset[str] | None = None

    @classmethod
    def of(cls, chunks: Sequence[Chunk], version_dir: Path | None = None) -> Book:
        return cls(chunks, read_page_lines(version_dir))

    def __contains__(self, number: str) -> bool:
        return number in self._sections

    def numbers(self) -> list[str]:
        return list(self._sections)

    def section(self, number: str) -> BookSection | None:
        s = self._sections.get(number)
        if s is not None and not s.blocks:
            with self._lock:
                if not s.blocks:
                    s.blocks = without_foreign_headings(build_blocks(s.chunks, self._page_lines),
                                                        " ".join((s.title, *s.heading_path)), self._shared_headings())
        return s

    def _shared_headings(self) -> frozenset[str]:
        """Part headings naming a subject ("Management of pneumonia") that the book prints in more than one
        section: the candidates for a layout template's leftovers (computed once)."""
        if self._shared is None:
            where: dict[str, set[str]] = {}
            for s in self._sections.values():
                for c in s.chunks:
                    for line in c.text.splitlines():
                        bare = line.strip().rstrip(":")
                        if bare and len(bare) < 80 and _subject(bare):
                            where.setdefault(bare, set()).add(s.number)
            self._shared = frozenset(h for h, secs in where.items() if len(secs) > 1)
        return self._shared

    def parent(self, number: str) -> str | None:
        """The nearest enclosing section: from the heading path, which places a misnumbered section where the
        book prints it (§9.1.1b under §9.2, §16.5.1.2 under §16.6.1), else from the number."""
        placed = enclosing(self._sections[number].heading_path, self._sections) if number in self._sections else None
        if placed is not None:
            return placed
        head = number.rpartition(".")[0]
        while head:
            if head in self._sections:
                return head
            head = head.rpartition(".")[0]
        return None

    def children(self, number: str) -> list[str]:
        prefix = number + "."
        return [n for n in self._sections if n.startswith(prefix) and "." not in n[len(prefix):]]

    def siblings(self, number: str) -> list[str]:
        parent = number.rpartition(".")[0]
        return [n for n in self._sections if n != number and n.rpartition(".")[0] == parent and parent]

    @cached_property
    def titles(self) -> dict[str, str]:
        return {n: s.title for n, s in self._sections.items()}


_MISNUMBERED = re.compile(rf"^(\d+(?:\.\d+)+)[{REPEAT_LETTERS}]$")


def enclosing(heading_path: Sequence[str], known: Container[str]) -> str | None:
    """The nearest section of a heading path ("9 Mental …", "9.2 Psychiatric …", "9.1.1 Alcohol …") that is
    among the `known` ones, the section itself left out: where the book prints a section, whatever its number."""
    return next((n for n in (p.split(" ")[0] for p in reversed(heading_path[:-1])) if n in known), None)


def printed_number(key: str) -> str:
    """The number the book prints for a section key: the key itself, or without the letter that keys a number
    the book prints twice ("9.1.3b", the second section printed as 9.1.3; ingest/structure.py)."""
    m = _MISNUMBERED.match(key)
    return m.group(1) if m else key


def related(a: str, b: str) -> bool:
    """The same section, or one is an ancestor of the other (§2.5.2 and §2.5.2.2). A misnumbered section
    ("9.1.1b") is related to itself only: its printed number says nothing of its place in the tree."""
    if not (a and b) or a == b:
        return bool(a and b)
    if a != printed_number(a) or b != printed_number(b):
        return False
    return a.startswith(b + ".") or b.startswith(a + ".")


def matches_gold(key: str, title: str, gold_section: str, gold_title: str = "") -> bool:
    """Is the section keyed `key` the gold section of a question (or its parent/child)? Gold sets cite the
    printed number, so a number the book prints twice is told apart by the title: 9.1.3 Childhood Behavioural
    Disorders is §9.1.3b here, not §9.1.3 Headache."""
    printed = printed_number(key)
    if printed == gold_section and title and gold_title:
        return bool(set(re.findall(r"[a-z]{3,}", title.lower())) & set(re.findall(r"[a-z]{3,}", gold_title.lower())))
    return printed == gold_section or related(key, gold_section)


_BOOKS: dict[tuple[int, str], Book] = {}
_BOOKS_LOCK = threading.Lock()


def book_for(index) -> Book:
    """The Book of a loaded index version (built once and kept while the version is in use)."""
    key = (id(index), getattr(index, "version_id", ""))
    with _BOOKS_LOCK:
        book = _BOOKS.get(key)
        if book is None:
            if len(_BOOKS) > 4:
                _BOOKS.clear()
            book = _BOOKS[key] = Book.of(index.chunks, getattr(index, "path", None))
        return book
