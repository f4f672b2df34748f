"""The guideline's own structure: table of contents and numbered section tree.

Headings are lines that start with a section number (``2.5.2.2 Complicated/Severe Malaria``). A candidate
is accepted when the table of contents confirms its number, or when it is a plausible next step from the
current position in the tree (a first child, the next sibling of an ancestor, the next chapter), so list
items and table cells that start with a number are not mistaken for headings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ragcds.clinical import UNIT_WORD_RX
from ragcds.ingest.clean import CleanPage

_TOC_LINE = re.compile(
    r"^(?:(?P<num>\d{1,2}(?:\.\d{1,2})*)\.?\s+)?(?P<title>\S.*?)\s*\.{3,}\s*(?P<page>\d{1,4}|[IVXLC]+)?\s*$"
)
_HEADING = re.compile(r"^(?P<num>\d{1,2}(?:\.\d{1,2}){0,4})\.?(?P<space>\s*)(?P<title>[A-Za-z(\"'“].*)$")
_APPENDIX = re.compile(r"^APPENDIX\s+(?P<num>\d{1,2}|[A-Z])\s*[:.\-–]?\s*(?P<title>.*)$", re.IGNORECASE)
_ICD = re.compile(r"\s*ICD\s*-?\s*10\s*CODE\b.*$", re.IGNORECASE)
# a "numbered line" whose title starts with a unit is a dose or duration ("2.5 mg ..."), not a heading
_UNIT_WORD = re.compile(rf"^(?:{UNIT_WORD_RX}|hours?|hrs?|days?|weeks?|months?|years?|yrs?|times|x)\b", re.IGNORECASE)
MAX_STEP = 3  # how far a sibling number may jump without confirmation from the table of contents


@dataclass(frozen=True)
class TocEntry:
    number: str  # "" for unnumbered front-matter entries (Foreword, Abbreviations, ...)
    title: str
    page_label: str  # as printed in the contents ("166", "XLIV"); "" when missing


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

    @property
    def toc_coverage(self) -> float:
        total = len(self.toc_found) + len(self.toc_missing)
        return len(self.toc_found) / total if total else 0.0


def _key(num: str) -> tuple[int, ...]:
    return tuple(int(x) for x in num.split("."))


def clean_title(title: str) -> str:
    return re.sub(r"\s+", " ", _ICD.sub("", title)).strip(" -–:")


def parse_toc(pages: list[CleanPage]) -> tuple[list[TocEntry], set[int]]:
    """Contents entries and the PDF pages they were read from. Only leading pages are searched."""
    entries: list[TocEntry] = []
    toc_pages: set[int] = set()
    seen_numbers: set[str] = set()
    for page in pages[: max(40, len(pages) // 10)]:
        hits = [m for line in page.lines if (m := _TOC_LINE.match(line.strip()))]
        if len(hits) < 2:
            if toc_pages and page.pdf_page > max(toc_pages) + 1:
                break
            continue
        toc_pages.add(page.pdf_page)
        for m in hits:
            title = clean_title(m.group("title"))
            num = m.group("num") or ""
            if not re.search(r"[A-Za-z]", title) or num in seen_numbers and num:
                continue
            seen_numbers.add(num)
            entries.append(TocEntry(number=num, title=title, page_label=m.group("page") or ""))
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
    toc, toc_pages = parse_toc(pages)
    toc_by_num = {e.number: e for e in toc if e.number}
    toc_pos = {e.number: i for i, e in enumerate(toc) if e.number}
    label_to_page = {p.label: p.pdf_page for p in pages if p.label}
    body_start = max(toc_pages) + 1 if toc_pages else 1
    # front-matter starts: unnumbered contents entries whose printed page precedes the body
    front_starts = {}
    for e in toc:
        if not e.number and e.page_label in label_to_page and label_to_page[e.page_label] >= body_start:
            front_starts.setdefault(label_to_page[e.page_label], e.title)
    chapters = _chapter_titles(toc, pages)

    sections: list[Section] = []
    by_num: dict[str, Section] = {}
    contents = Section(number="", title="Contents", heading_path=("Contents",), indexable=False)
    current = Section(number="", title="Front matter", heading_path=("Front matter",))
    sections.append(current)
    cur_key: tuple[int, ...] | None = None
    cur_pos = -1  # position of the current section in the contents (the book's own order, typos and all)
    appendix_count = 0
    pending_title: Section | None = None  # an appendix heading whose title is on the next line
    for page in pages:
        if page.pdf_page in toc_pages:
            contents.lines.extend((page.pdf_page, line) for line in page.lines)
            continue
        if cur_key is None and page.pdf_page in front_starts:
            title = front_starts[page.pdf_page]
            current = Section(number="", title=title, heading_path=(title,))
            sections.append(current)
        for line in page.lines:
            if pending_title is not None:
                pending_title.title = clean_title(line)
                pending_title.heading_path = (f"Appendix {pending_title.number[1:]} {pending_title.title}",)
                pending_title = None
                continue
            am = _APPENDIX.match(line.strip()) if cur_key is not None and len(line) < 100 else None
            if am and am.group("num") in (str(appendix_count + 1), chr(ord("A") + appendix_count)):
                appendix_count += 1
                current = Section(number=f"A{am.group('num')}", title=clean_title(am.group("title")),
                                  heading_path=(line.strip(),))
                sections.append(current)
                if not current.title:
                    pending_title = current
                continue
            m = _HEADING.match(line.strip()) if page.pdf_page >= body_start and not appendix_count else None
            if m and len(line) < 160:
                num, raw_title = m.group("num"), m.group("title")
                key = _key(num)
                title = clean_title(raw_title)
                entry = toc_by_num.get(num)
                confirmed = entry is not None and _title_similar(entry.title, title)
                spaced = bool(m.group("space"))  # "5.3.1Definition" only counts when the contents confirm it
                ok = (spaced or confirmed) and num not in by_num and len(key) >= 2 and not _UNIT_WORD.match(title) and (
                    (confirmed and toc_pos[num] > cur_pos) or _plausible_next(key, cur_key)
                )
                if ok:
                    if entry is not None and confirmed:
                        title = entry.title
                    elif title.isupper():
                        title = title.title()
                    path = [f"{key[0]} {chapters.get(str(key[0]), '')}".strip()]
                    path += [f"{a} {by_num[a].title}" for i in range(2, len(key))
                             if (a := ".".join(map(str, key[:i]))) in by_num]
                    path.append(f"{num} {title}")
                    current = Section(number=num, title=title, heading_path=tuple(path))
                    sections.append(current)
                    by_num[num] = current
                    cur_key = key
                    cur_pos = toc_pos.get(num, cur_pos)
                    rest = _ICD.search(raw_title)
                    if rest:
                        current.lines.append((page.pdf_page, rest.group(0).strip()))
                    continue
            current.lines.append((page.pdf_page, line))
    if contents.lines:
        sections.insert(0, contents)
    found, missing = [], []
    chapter_nums = {n.split(".")[0] for n in by_num}
    for e in toc:
        if not e.number:
            continue
        present = e.number in by_num if "." in e.number else e.number in chapter_nums
        (found if present else missing).append(f"{e.number} {e.title}")
    return Structure(toc=toc, sections=[s for s in sections if s.lines or s.number], toc_found=found,
                     toc_missing=missing)
