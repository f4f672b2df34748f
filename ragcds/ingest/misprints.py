"""Lines that fall inside the wrong section, moved to the section they belong to: misprints of the book (data)
and section openings the PDF's text layer emits before their own heading (a rule).

The UCG 2023 prints §1.3.2's atropine regimen for organophosphate poisoning on the next page, under the
Prevention heading of §1.3.3 Paraffin Poisoning: read as printed, a question on preventing paraffin poisoning
is answered with atropine doses. Such misprints are data (``ragcds/data/misprints.tsv``, each row reviewed
against the book by the tests), not code. A move keeps every line's text and page, so a citation still names
the page that prints it; a row that no longer matches the book (a corrected edition) moves nothing and is
reported, never guessed.

The text layer of a page may also put a section's heading after the body printed below it: on PDF p. 808 the
Causes and Clinical features of §16.4.3 Obstructed Labour come out before "16.4.3 Obstructed Labour", so they
would be read as the end of §16.4.2 Induction of Labour (``displaced_openings``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ragcds import clinical
from ragcds.files import package_data, table_rows
from ragcds.ingest.structure import Section

MISPRINTS_FILE = "misprints.tsv"


@dataclass(frozen=True)
class Misprint:
    pdf_page: int
    first: str  # how the first misplaced line starts (bullet ignored)
    last: str  # how the last misplaced line starts
    to_section: str
    before: str  # how the line they go before starts ("" = the section's end)
    why: str


@lru_cache(maxsize=1)
def misprints() -> tuple[Misprint, ...]:
    return parse_misprints(package_data(MISPRINTS_FILE))


def parse_misprints(text: str) -> tuple[Misprint, ...]:
    out = []
    for n, row in table_rows(text):
        if not all(row.get(k) for k in ("pdf_page", "first", "last", "to_section", "why")):
            raise ValueError(f"{MISPRINTS_FILE}: row {n} needs pdf_page, first, last, to_section, before, why")
        out.append(Misprint(int(row["pdf_page"]), row["first"], row["last"], row["to_section"],
                            row.get("before") or "", row["why"]))
    return tuple(out)


def _starts(line: str, start: str) -> bool:
    return clinical.strip_bullet(line.strip()).startswith(start)


def _run(section: Section, m: Misprint) -> tuple[int, int] | None:
    """(start, end) indexes of the misprinted lines in a section, end exclusive; None when not found."""
    lines = section.lines
    for i, (page, line) in enumerate(lines):
        if page == m.pdf_page and _starts(line, m.first):
            for j in range(i, len(lines)):
                if lines[j][0] != m.pdf_page:
                    return None
                if _starts(lines[j][1], m.last):
                    return i, j + 1
            return None
    return None


def relocate(sections: list[Section], rows: tuple[Misprint, ...] | None = None) -> list[str]:
    """Move each misprint's lines into the section they belong to (in place). Returns a line per row: what
    moved where, or that it did not match this PDF (the lines then stay where they are printed)."""
    by_number = {s.number: s for s in sections if s.number}
    report = []
    for m in misprints() if rows is None else rows:
        target = by_number.get(m.to_section)
        found = next(((s, r) for s in sections if s is not target and (r := _run(s, m))), None)
        at = None
        if target is not None:
            at = next((k for k, (_, line) in enumerate(target.lines) if m.before and _starts(line, m.before)),
                      None if m.before else len(target.lines))
        if found is None or at is None:
            report.append(f"not found: PDF p. {m.pdf_page} {m.first!r} → §{m.to_section}")
            continue
        source, (i, j) = found
        moved = source.lines[i:j]
        del source.lines[i:j]
        target.lines[at:at] = moved
        report.append(f"moved: PDF p. {m.pdf_page} {m.first!r} … {m.last!r} ({j - i} lines) from §{source.number} "
                      f"to §{m.to_section}")
    return report


# the order of a condition section's parts; a section whose text has reached its management does not open
# again with causes or clinical features
_PART_ORDER = ("intro", "causes", "features", "differential", "investigations", "complications", "management",
               "referral", "prevention")
_OPENING_PARTS = ("causes", "features")


def _part_rank(line: str) -> int:
    part = clinical.part_of_heading(line)
    return _PART_ORDER.index(part) if part in _PART_ORDER else -1


def displaced_openings(sections: list[Section]) -> list[str]:
    """Move a section's opening parts that the text layer emitted before its heading (in place): the lines of
    a section S on the page where the next section H starts, when they begin with Causes or Clinical features
    although S's text had already reached its Management on earlier pages, go to H after the heading lines
    H has on that page. Returns a line per move."""
    report = []
    for s, h in zip(sections, sections[1:], strict=False):
        if not (s.number and h.number and h.lines and s.lines):
            continue
        page = h.lines[0][0]
        first = next((k for k, (p, _) in enumerate(s.lines) if p == page), None)
        if first is None or any(p != page for p, _ in s.lines[first:]):
            continue
        opening = _part_rank(s.lines[first][1])
        reached = max((_part_rank(line) for p, line in s.lines[:first]), default=-1)
        if (opening < 0 or _PART_ORDER[opening] not in _OPENING_PARTS
                or reached < _PART_ORDER.index("management")):
            continue
        moved = s.lines[first:]
        del s.lines[first:]
        at = next((k for k, (p, _) in enumerate(h.lines) if p != page), len(h.lines))
        h.lines[at:at] = moved
        report.append(f"moved: PDF p. {page} {clinical.strip_bullet(moved[0][1])!r} … ({len(moved)} lines) from "
                      f"§{s.number} to §{h.number}, whose heading the page's text gives after them")
    return report
