"""`ragcds index diff OLD NEW`: what changed between two editions (PDFs or index versions).

Both sides are reduced to the same form — indexed sections with their lines, each line with its PDF page
and printed page label — so a PDF and an index version can be compared with each other. A section is keyed
by its number (by its title when unnumbered). Output: sections added / removed / changed with a unified
text diff per changed section, and, listed first, every changed line that carries a digit (doses,
durations, thresholds): old line → new line with section and printed page.

Change counts between two chunk lists (:func:`classify_changes`, used by ``ragcds index update``):

* unchanged — the chunk id (hash of section, PDF pages and text) is in both versions;
* moved     — same section and identical text, but on other PDF pages (pages shifted); not re-embedded;
* changed   — the remaining chunks of a section present in both versions, paired in order;
* added / removed — the rest (new sections, extra chunks in a section / sections or chunks that went).
"""

from __future__ import annotations

import difflib
import json
import re
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ragcds.config import Settings
from ragcds.index.version import VersionData
from ragcds.index.versions import resolve_ref
from ragcds.ingest.chunk import Chunk
from ragcds.ingest.pdf import check_pdf_file
from ragcds.ingest.pipeline import parse_pdf

_NUM = re.compile(r"\d+(?:[.,/]\d+)*")


@dataclass
class Line:
    text: str
    pdf_page: int
    label: str

    @property
    def page(self) -> str:
        return self.label or f"pdf {self.pdf_page}"


@dataclass
class SectionText:
    key: str
    number: str
    title: str
    lines: list[Line]


@dataclass
class Edition:
    name: str  # what the user passed
    version: str  # index version id or PDF sha256 prefix
    sections: dict[str, SectionText]


def edition_from_chunks(name: str, version: str, chunks: list[Chunk], pages: list[dict]) -> Edition:
    """Sections rebuilt from chunks (in order); each line is placed on the first of its chunk's pages that
    contains it."""
    page_lines = {p["pdf_page"]: {" ".join(x.split()) for x in p["lines"]} for p in pages}
    labels = {p["pdf_page"]: p.get("label", "") for p in pages}
    sections: dict[str, SectionText] = {}
    for c in chunks:
        key = c.section or c.title
        sec = sections.setdefault(key, SectionText(key, c.section, c.title, []))
        for text in c.text.split("\n"):
            norm = " ".join(text.split())
            page = next((p for p in c.pdf_pages if norm in page_lines.get(p, ())), c.pdf_pages[0])
            label = labels.get(page) or (
                c.printed_pages[c.pdf_pages.index(page)] if page in c.pdf_pages else ""
            )
            sec.lines.append(Line(text, page, label))
    return Edition(name, version, sections)


def load_edition(ref: str | Path, settings: Settings | None = None) -> Edition:
    """A PDF file (parsed, not embedded) or an index version: DIR (CURRENT), a version dir, or DIR@ID."""
    path = Path(str(ref))
    if path.suffix.lower() == ".pdf" or path.is_file():
        check_pdf_file(path)  # a missing or non-PDF file says so (not "no index")

        parsed = parse_pdf(path, settings or Settings())
        pages = [{"pdf_page": p.pdf_page, "label": p.label, "lines": list(p.lines)} for p in parsed.clean]
        return edition_from_chunks(str(ref), f"pdf:{parsed.sha256[:12]}", parsed.chunks, pages)
    data = VersionData.load(resolve_ref(ref))
    return edition_from_chunks(str(ref), data.manifest.version_id, data.chunks, data.pages)


@dataclass
class ChangeCounts:
    unchanged: int = 0
    moved: int = 0
    changed: int = 0
    added: int = 0
    removed: int = 0
    changed_sections: list[str] = field(default_factory=list)  # sections with any changed/added/removed chunk

    def to_dict(self) -> dict:
        return asdict(self)


def classify_changes(old: list[Chunk], new: list[Chunk]) -> ChangeCounts:
    """Compare two chunk lists (definitions in the module docstring)."""
    counts = ChangeCounts()
    old_ids = {c.chunk_id for c in old}
    new_ids = {c.chunk_id for c in new}
    counts.unchanged = len(old_ids & new_ids)
    old_rest: dict[str, list[Chunk]] = defaultdict(list)
    new_rest: dict[str, list[Chunk]] = defaultdict(list)
    for c in old:
        if c.chunk_id not in new_ids:
            old_rest[c.section or c.title].append(c)
    for c in new:
        if c.chunk_id not in old_ids:
            new_rest[c.section or c.title].append(c)
    touched: list[str] = []
    for key in dict.fromkeys([*old_rest, *new_rest]):
        o, n = old_rest.get(key, []), new_rest.get(key, [])
        o_texts = Counter(c.text for c in o)
        still_new = []
        for c in n:  # identical text, other pages: moved
            if o_texts[c.text] > 0:
                o_texts[c.text] -= 1
                counts.moved += 1
            else:
                still_new.append(c)
        o_left = sum(o_texts.values())
        if not o_left and not still_new:
            continue
        touched.append(key)
        if o and n:  # the section exists in both versions
            pairs = min(o_left, len(still_new))
            counts.changed += pairs
            counts.added += len(still_new) - pairs
            counts.removed += o_left - pairs
        else:
            counts.added += len(still_new)
            counts.removed += o_left
    counts.changed_sections = touched
    return counts


@dataclass
class NumberChange:
    section: str
    title: str
    old: str | None  # None: the line was added
    new: str | None  # None: the line was removed
    old_page: str
    new_page: str
    numbers_changed: bool  # the numbers themselves differ (not only the wording around them)


@dataclass
class SectionChange:
    key: str
    number: str
    title: str
    old_title: str
    unified_diff: str
    lines_added: int
    lines_removed: int


@dataclass
class DiffReport:
    old: str
    new: str
    old_version: str
    new_version: str
    added: list[dict] = field(default_factory=list)  # {key, number, title, page}
    removed: list[dict] = field(default_factory=list)
    changed: list[SectionChange] = field(default_factory=list)
    numbers: list[NumberChange] = field(default_factory=list)
    unchanged_sections: int = 0

    def to_dict(self) -> dict:
        return {
            "old": self.old,
            "new": self.new,
            "old_version": self.old_version,
            "new_version": self.new_version,
            "summary": {
                "added": len(self.added),
                "removed": len(self.removed),
                "changed": len(self.changed),
                "unchanged": self.unchanged_sections,
                "number_changes": len(self.numbers),
            },
            "numbers": [asdict(n) for n in self.numbers],
            "added": self.added,
            "removed": self.removed,
            "changed": [asdict(c) for c in self.changed],
        }


def _has_digit(text: str | None) -> bool:
    return bool(text) and bool(re.search(r"\d", text or ""))


def _pair(old: list[Line], new: list[Line]) -> list[tuple[Line | None, Line | None]]:
    """Pair the lines of one replaced block by similarity (greedy); leftovers are added/removed."""
    cand = sorted(
        (
            (difflib.SequenceMatcher(None, o.text, n.text).ratio(), i, j)
            for i, o in enumerate(old)
            for j, n in enumerate(new)
        ),
        reverse=True,
    )
    used_o: set[int] = set()
    used_n: set[int] = set()
    pairs: dict[int, int] = {}
    for ratio, i, j in cand:
        if ratio >= 0.5 and i not in used_o and j not in used_n:
            used_o.add(i)
            used_n.add(j)
            pairs[i] = j
    out: list[tuple[Line | None, Line | None]] = [
        (o, new[pairs[i]] if i in pairs else None) for i, o in enumerate(old)
    ]
    out += [(None, n) for j, n in enumerate(new) if j not in used_n]
    return out


def _section_label(s: SectionText) -> str:
    return f"§{s.number} {s.title}" if s.number else s.title


def diff_editions(old: Edition, new: Edition, context: int = 2) -> DiffReport:
    rep = DiffReport(old.name, new.name, old.version, new.version)
    for key, s in new.sections.items():
        if key not in old.sections:
            rep.added.append(
                {"key": key, "number": s.number, "title": s.title, "page": s.lines[0].page if s.lines else ""}
            )
    for key, s in old.sections.items():
        if key not in new.sections:
            rep.removed.append(
                {"key": key, "number": s.number, "title": s.title, "page": s.lines[0].page if s.lines else ""}
            )
    for key, n in new.sections.items():
        o = old.sections.get(key)
        if o is None:
            continue
        a, b = [x.text for x in o.lines], [x.text for x in n.lines]
        if a == b and o.title == n.title:
            rep.unchanged_sections += 1
            continue
        label = _section_label(n)
        udiff = "\n".join(
            difflib.unified_diff(a, b, f"{label} (old)", f"{label} (new)", n=context, lineterm="")
        )
        sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
        plus = minus = 0
        for tag, i1, i2, j1, j2 in sm.get_opcodes():
            if tag == "equal":
                continue
            minus += i2 - i1
            plus += j2 - j1
            for ol, nl in _pair(o.lines[i1:i2], n.lines[j1:j2]):
                if not (_has_digit(ol.text if ol else None) or _has_digit(nl.text if nl else None)):
                    continue
                nums_o = _NUM.findall(ol.text) if ol else []
                nums_n = _NUM.findall(nl.text) if nl else []
                rep.numbers.append(
                    NumberChange(
                        n.number,
                        n.title,
                        ol.text if ol else None,
                        nl.text if nl else None,
                        ol.page if ol else "",
                        nl.page if nl else "",
                        nums_o != nums_n,
                    )
                )
        rep.changed.append(SectionChange(key, n.number, n.title, o.title, udiff, plus, minus))
    return rep


def diff_refs(old: str | Path, new: str | Path, settings: Settings | None = None) -> DiffReport:
    return diff_editions(load_edition(old, settings), load_edition(new, settings))


def _md_cell(text: str | None) -> str:
    return "—" if text is None else "`" + text.replace("`", "'").replace("|", "\\|") + "`"


def to_markdown(rep: DiffReport) -> str:
    out = [
        f"# Guideline changes: {rep.old} → {rep.new}",
        "",
        f"Old: `{rep.old_version}` · New: `{rep.new_version}` · sections added {len(rep.added)}, "
        f"removed {len(rep.removed)}, changed {len(rep.changed)}, unchanged {rep.unchanged_sections}",
        "",
    ]
    out += ["## ⚠ Changed numbers and doses", ""]
    if rep.numbers:
        out += [
            "Lines with digits that differ — re-learn these. (**bold** = the numbers themselves changed)",
            "",
            "| Section | Old line (page) | New line (page) |",
            "|---|---|---|",
        ]
        for c in rep.numbers:
            sec = f"§{c.section} {c.title}" if c.section else c.title
            sec = f"**{sec}**" if c.numbers_changed else sec
            old = f"{_md_cell(c.old)} (p. {c.old_page})" if c.old is not None else "— (added)"
            new = f"{_md_cell(c.new)} (p. {c.new_page})" if c.new is not None else "— (removed)"
            out.append(f"| {sec} | {old} | {new} |")
    else:
        out.append("No changed lines with digits.")
    for title, rows in (("Sections added", rep.added), ("Sections removed", rep.removed)):
        out += ["", f"## {title}", ""]
        out += [
            f"- §{r['number']} {r['title']} (p. {r['page']})"
            if r["number"]
            else f"- {r['title']} (p. {r['page']})"
            for r in rows
        ] or ["None."]
    out += ["", "## Sections changed", ""]
    if not rep.changed:
        out.append("None.")
    for c in rep.changed:
        head = f"§{c.number} {c.title}" if c.number else c.title
        retitled = f" (was: {c.old_title})" if c.old_title != c.title else ""
        out += [
            f"### {head}{retitled}",
            "",
            f"+{c.lines_added} / −{c.lines_removed} lines",
            "",
            "```diff",
            c.unified_diff,
            "```",
            "",
        ]
    return "\n".join(out).rstrip() + "\n"


def to_json(rep: DiffReport) -> str:
    return json.dumps(rep.to_dict(), ensure_ascii=False, indent=1)
