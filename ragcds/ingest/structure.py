"""The guideline's own structure: table of contents and numbered section tree.

Headings are lines that start with a section number (``2.5.2.2 Complicated/Severe Malaria``). A candidate
is accepted when the table of contents confirms its number, or when it is a plausible next step from the
current position in the tree (a first child, the next sibling of an ancestor, the next chapter), so list
items and table cells that start with a number are not mistaken for headings.

The UCG 2023 prints some numbers twice, and its contents list them twice in the same order (chapter 9 reprints
§9.2–9.2.4.1, the latter as "9.1.1.1", then numbers Alcohol Use Disorders … Childhood Developmental Disorders
9.1.1–9.1.4 again; "6.5.4.2 Oesophageal Varices"; "1.1.1 Common Cancers in Adults" in chapter 12). A repeated
number confirmed by its repeated contents entry is either a **reprint** (the same title as a section already read
in the chapter: its lines join that section, so both printings are one section) or a **misnumbered section** of
its own, keyed by the printed number and a letter (``9.1.3b``: the second section printed as 9.1.3), and placed
in the tree where it stands in the book.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ragcds.clinical import UNIT_WORD_RX
from ragcds.ingest.clean import CleanPage

# a chapter number printed with its first digit doubled ("117.2.10 Counsel the Mother", in the contents and
# the body of chapter 17) is read without the extra digit; the contents or the tree still confirm the heading
_DOUBLED = r"(?:(?P<dup>\d)(?=(?P=dup)\d\.))?"
_TOC_LINE = re.compile(
    rf"^(?:{_DOUBLED}(?P<num>\d{{1,2}}(?:\.\d{{1,2}})*)\.?\s+)?(?P<title>\S.*?)\s*\.{{3,}}\s*"
    r"(?P<page>\d{1,4}|[IVXLC]+)?\s*$"
)
_TOC_LOOSE = re.compile(rf"^{_DOUBLED}(?P<num>\d{{1,2}}(?:\.\d{{1,2}})+)\.?\s+(?P<title>[A-Za-z].*)$")
_HEADING = re.compile(rf"^{_DOUBLED}(?P<num>\d{{1,2}}(?:\.\d{{1,2}}){{0,4}})\.?(?P<space>\s*)"
                      r"(?P<title>[A-Za-z(\"'“].*)$")


def heading_number(line: str) -> str | None:
    """The section number a numbered line prints ("117.2.10 Counsel the Mother" → "17.2.10"), else None."""
    m = _HEADING.match(line.strip())
    return m.group("num") if m else None


_APPENDIX = re.compile(r"^APPENDIX\s+(?P<num>\d{1,2}|[A-Z])\s*[:.\-–]?\s*(?P<title>.*)$", re.IGNORECASE)
_ICD = re.compile(r"\s*ICD\s*-?\s*10\s*CODE\b.*$", re.IGNORECASE)
# a "numbered line" whose title starts with a unit is a dose or duration ("2.5 mg ..."), not a heading
_UNIT_WORD = re.compile(rf"^(?:{UNIT_WORD_RX}|hours?|hrs?|days?|weeks?|months?|years?|yrs?|times|x)\b", re.IGNORECASE)
MAX_STEP = 3  # how far a sibling number may jump without confirmation from the table of contents
REPEAT_LETTERS = "bcdefghijk"  # keys of the 2nd, 3rd … section printed under one number ("9.1.3b")


@dataclass(frozen=True)
class TocEntry:
    number: str  # "" for unnumbered front-matter entries (Foreword, Abbreviations, ...)
    title: str
    page_label: str  # as printed in the contents ("166", "XLIV"); "" when missing
    # read from a numbered contents line whose leader dots and page number the PDF's text layer put elsewhere
    # ("16.6.2 Postnatal"): it confirms the number and the book order, the title is taken from the body
    loose: bool = False


@dataclass
class Section:
    number: str
    title: str
    heading_path: tuple[str, ...]
    lines: list[tuple[int, str]] = field(default_factory=list)  # (pdf_page, text line)
    indexable: bool = True  # the contents pages themselves are not indexed

    @property
    def level(self) -> int:
        return len(self.number.split(".")) if self.number else 0

    @property
    def pdf_pages(self) -> list[int]:
        return sorted({p for p, _ in self.lines})


@dataclass
class Structure:
    toc: list[TocEntry]
    sections: list[Section]
    toc_found: list[str]
    toc_missing: list[str]
    # what ingest.misprints did: a line per moved run, and per row that did not match this PDF
    misprints: list[str] = field(default_factory=list)

    @property
    def toc_coverage(self) -> float:
        total = len(self.toc_found) + len(self.toc_missing)
        return len(self.toc_found) / total if total else 0.0


def _key(num: str) -> tuple[int, ...]:
    return tuple(int(x) for x in num.split("."))


def heading_title(title: str) -> str:
    return re.sub(r"\s+", " ", _ICD.sub("", title)).strip(" -–:")


def parse_toc(pages: list[CleanPage]) -> tuple[list[TocEntry], set[int]]:
    """Contents entries and the PDF pages they were read from. Only leading pages are searched."""
    entries: list[TocEntry] = []
    toc_pages: set[int] = set()
    for page in pages[: max(40, len(pages) // 10)]:
        hits = [m for line in page.lines if (m := _TOC_LINE.match(line.strip()))]
        if len(hits) < 2:
            if toc_pages and page.pdf_page > max(toc_pages) + 1:
                break
            continue
        toc_pages.add(page.pdf_page)
        for line in page.lines:
            m = _TOC_LINE.match(line.strip())
            loose = None if m else _TOC_LOOSE.match(line.strip())
            if not (m or loose):
                continue
            title = heading_title((m or loose).group("title"))
            num = (m or loose).group("num") or ""
            if not re.search(r"[A-Za-z]", title):
                continue
            entries.append(TocEntry(number=num, title=title, page_label=m.group("page") or "" if m else "",
                                    loose=loose is not None))
    return entries, toc_pages


def _plausible_next(num: tuple[int, ...], cur: tuple[int, ...] | None) -> bool:
    if cur is None:
        return len(num) >= 2 and num[-1] <= MAX_STEP
    if num[:-1] == cur and num[-1] <= MAX_STEP:  # first children of the current section
        return True
    depth = len(num) - 1
    if depth < len(cur) and num[:-1] == cur[:depth]:  # next sibling of the current section or an ancestor
        return cur[depth] < num[-1] <= cur[depth] + MAX_STEP
    if depth >= 1 and num[0] == cur[0] + 1 and all(x <= 1 for x in num[1:-1]) and num[-1] <= MAX_STEP:
        return True  # first section of the next chapter
    return False


def _title_similar(a: str, b: str) -> bool:
    wa = set(re.findall(r"[a-z]{3,}", a.lower()))
    wb = set(re.findall(r"[a-z]{3,}", b.lower()))
    return bool(wa & wb) or not wa or not wb


def _chapter_titles(toc: list[TocEntry], pages: list[CleanPage]) -> dict[str, str]:
    titles = {e.number: e.title.title() for e in toc if e.number and "." not in e.number}
    for p in pages:  # the running titles ("CHAPTER 2: Infectious Diseases") are better cased
        if m := re.match(r"CHAPTER (\d+): (.+)", p.running_title):
            titles.setdefault(m.group(1), m.group(2))
            if titles[m.group(1)].isupper() or titles[m.group(1)].istitle():
                titles[m.group(1)] = m.group(2)
    return titles


def build_structure(pages: list[CleanPage]) -> Structure:
    """The section tree of a guideline: contents pages set apart, front matter split by the contents'
    unnumbered entries, numbered headings accepted by :meth:`_TreeBuilder.accept_heading`, appendices."""
    toc, toc_pages = parse_toc(pages)
    builder = _TreeBuilder(toc, toc_pages, pages)
    for page in pages:
        builder.feed_page(page)
    return builder.result()


class _TreeBuilder:
    """A small state machine over the body lines: the current section, its number key and its position in
    the contents, the appendix count and an appendix heading waiting for its title line."""

    def __init__(self, toc: list[TocEntry], toc_pages: set[int] | list[int], pages: list[CleanPage]):
        self.toc, self.toc_pages = toc, toc_pages
        self.toc_used: set[int] = set()  # positions of the contents entries found in the body
        label_to_page = {p.label: p.pdf_page for p in pages if p.label}
        self.body_start = max(toc_pages) + 1 if toc_pages else 1
        # front-matter starts: unnumbered contents entries whose printed page precedes the body
        self.front_starts: dict[int, str] = {}
        for e in toc:
            if not e.number and e.page_label in label_to_page and label_to_page[e.page_label] >= self.body_start:
                self.front_starts.setdefault(label_to_page[e.page_label], e.title)
        self.chapters = _chapter_titles(toc, pages)
        self.by_num: dict[str, Section] = {}
        self.contents = Section(number="", title="Contents", heading_path=("Contents",), indexable=False)
        self.current = Section(number="", title="Front matter", heading_path=("Front matter",))
        self.sections: list[Section] = [self.current]
        self.cur_key: tuple[int, ...] | None = None
        self.cur_pos = -1  # position of the current section in the contents (the book's own order, typos and all)
        self.reprinting = False  # the last heading was a reprint of a section already read
        self.appendix_count = 0
        self.pending_title: Section | None = None  # an appendix heading whose title is on the next line

    def feed_page(self, page: CleanPage) -> None:
        if page.pdf_page in self.toc_pages:
            self.contents.lines.extend((page.pdf_page, line) for line in page.lines)
            return
        if self.cur_key is None and page.pdf_page in self.front_starts:
            title = self.front_starts[page.pdf_page]
            self._open(Section(number="", title=title, heading_path=(title,)))
        for line in page.lines:
            self.feed_line(page, line)

    def feed_line(self, page: CleanPage, line: str) -> None:
        if self.pending_title is not None:
            pending, self.pending_title = self.pending_title, None
            pending.title = heading_title(line)
            pending.heading_path = (f"Appendix {pending.number[1:]} {pending.title}",)
            return
        if self._appendix(line):
            return
        m = _HEADING.match(line.strip()) if page.pdf_page >= self.body_start and not self.appendix_count else None
        if m and len(line) < 160:
            title = self.accept_heading(m)
            if title is not None:
                if self._open_numbered(m.group("num"), title):  # a reprint keeps the heading as printed
                    self.current.lines.append((page.pdf_page, line))
                elif rest := _ICD.search(m.group("title")):
                    self.current.lines.append((page.pdf_page, rest.group(0).strip()))
                return
        self.current.lines.append((page.pdf_page, line))

    def _toc_ahead(self, num: str, title: str) -> int | None:
        """The position of the next contents entry (after the current one) with this number and a similar
        title: the contents confirm the heading in the book's own order."""
        return next((i for i in range(self.cur_pos + 1, len(self.toc))
                     if self.toc[i].number == num and _title_similar(self.toc[i].title, title)), None)

    def accept_heading(self, m: re.Match) -> str | None:
        """The section title when a numbered line is a heading, else None. A heading is confirmed by the
        contents (in the contents' own order) or a plausible next step in the tree; "5.3.1Definition" (no
        space) only counts when confirmed; dose lines ("2 mg ...") never do, and a number already seen only
        when the contents print it again here. A confirmed heading moves the position in the contents on."""
        num = m.group("num")
        key = _key(num)
        title = heading_title(m.group("title"))
        pos = self._toc_ahead(num, title)
        spaced = bool(m.group("space"))
        if not (spaced or pos is not None) or len(key) < 2 or _UNIT_WORD.match(title):
            return None
        if pos is None and (num in self.by_num or not _plausible_next(key, self.cur_key)):
            return None
        if pos is not None:
            self.toc_used.add(pos)
            self.cur_pos = pos
            if not self.toc[pos].loose:
                return self.toc[pos].title
        return title.title() if title.isupper() else title

    def _appendix(self, line: str) -> bool:
        am = _APPENDIX.match(line.strip()) if self.cur_key is not None and len(line) < 100 else None
        if not (am and am.group("num") in (str(self.appendix_count + 1), chr(ord("A") + self.appendix_count))):
            return False
        self.appendix_count += 1
        self._open(Section(number=f"A{am.group('num')}", title=heading_title(am.group("title")),
                           heading_path=(line.strip(),)))
        if not self.current.title:
            self.pending_title = self.current
        return True

    def _open(self, section: Section) -> None:
        self.current = section
        self.sections.append(section)

    def _open_numbered(self, num: str, title: str) -> bool:
        """Open the section of a heading; True when it is the reprint of a section already read."""
        key = _key(num)
        out_of_place = self._out_of_place(key)
        self.cur_key = key
        if reprinted := self._reprinted(num, title):
            self.current = reprinted
            return True
        if num in self.by_num or out_of_place:  # misnumbered: placed where it stands in the book
            path = [*self.current.heading_path[: len(key) - 1], f"{num} {title}"]
            if num in self.by_num:  # a number printed twice: keyed 9.1.3b
                num = num + next(c for c in REPEAT_LETTERS if num + c not in self.by_num)
        else:
            path = [f"{key[0]} {self.chapters.get(str(key[0]), '')}".strip()]
            path += [f"{a} {self.by_num[a].title}" for i in range(2, len(key))
                     if (a := ".".join(map(str, key[:i]))) in self.by_num]
            path.append(f"{num} {title}")
        self._open(Section(number=num, title=title, heading_path=tuple(path)))
        self.by_num[num] = self.current
        return False

    def _out_of_place(self, key: tuple[int, ...]) -> bool:
        """A sub-section whose printed parent is a section read before but not an ancestor of where the book
        stands: "16.5.1.2 Postpartum Examination of the Mother" printed inside §16.6.1 Postpartum Care belongs
        there, not under §16.5.1 Newborn Resuscitation."""
        parent = ".".join(map(str, key[:-1]))
        if len(key) < 3 or parent not in self.by_num:
            return False
        return parent not in {p.split(" ")[0] for p in self.current.heading_path}

    def _reprinted(self, num: str, title: str) -> Section | None:
        """The section of this chapter already read under the same title, when the book prints it again: under
        its own number, or under another one in the run of a reprint (§9.2.4.1 Postnatal Psychosis reprinted as
        "9.1.1.1" right after the reprint of §9.2.4)."""
        in_run = self.reprinting
        self.reprinting = False
        if num not in self.by_num and not in_run:
            return None
        words = re.findall(r"[a-z]+", title.lower())
        chapter = num.split(".")[0]
        found = next((s for n, s in self.by_num.items() if n.split(".")[0] == chapter
                      and re.findall(r"[a-z]+", s.title.lower()) == words), None)
        self.reprinting = found is not None
        return found

    def result(self) -> Structure:
        sections = ([self.contents] if self.contents.lines else []) + self.sections
        found, missing = [], []
        chapter_nums = {n.split(".")[0] for n in self.by_num}
        for i, e in enumerate(self.toc):
            if not e.number:
                continue
            present = e.number in self.by_num if "." in e.number else e.number in chapter_nums
            (found if present or i in self.toc_used else missing).append(f"{e.number} {e.title}")
        return Structure(toc=self.toc, sections=[s for s in sections if s.lines or s.number], toc_found=found,
                         toc_missing=missing)
