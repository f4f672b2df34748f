"""Page text cleaning: running headers/footers out, symbol-font glyphs mapped explicitly.

Rules: digits are never altered or dropped (except the page's own printed-number line, which becomes
metadata); glyphs are mapped only in the contexts listed below; anything else outside normal text
(private-use or control characters) is replaced by a visible marker and counted, never silently dropped.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

from ragcds.config import CleanSettings
from ragcds.ingest.pdf import Page

UNMAPPED_MARK = "\ufffd"  # shown in the text so a reader sees something was there

# (name, pattern, replacement): each is an explicit, context-bound mapping of a symbol-font artefact.
GLYPH_RULES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    # U+00B3 "³" printed for ≥ before a number ("BP ³160/99", "³6 months").
    ("ge_from_superscript3", re.compile(r"³(?=\s?[-−]?\d)"), "≥"),
    # U+00A3 "£" printed for ≤ before a number ("child £ 6 m", "eating £ 80%").
    ("le_from_pound", re.compile(r"£(?=\s?\d)"), "≤"),
    # Arrows in the shock tables: standalone runs of â (↓) and á (↑), e.g. "Normal á áá".
    ("down_arrow_from_a_circumflex", re.compile(r"(?<![A-Za-z])â+(?![A-Za-z])"), None),
    ("up_arrow_from_a_acute", re.compile(r"(?<![A-Za-z])á+(?![A-Za-z])"), None),
    # Private-use glyph of the symbol font for ↓.
    ("down_arrow_from_pua_f0e2", re.compile("\uf0e2"), "↓"),
)
_ARROW_FOR = {"down_arrow_from_a_circumflex": "↓", "up_arrow_from_a_acute": "↑"}


@dataclass
class CleanStats:
    glyphs_mapped: Counter = field(default_factory=Counter)
    unmapped_glyphs: Counter = field(default_factory=Counter)  # "U+F0E2" -> count
    running_lines_removed: int = 0

    def as_dict(self) -> dict:
        return {
            "glyphs_mapped": dict(self.glyphs_mapped),
            "unmapped_glyphs": dict(self.unmapped_glyphs),
            "running_lines_removed": self.running_lines_removed,
        }


@dataclass(frozen=True)
class CleanPage:
    pdf_page: int
    label: str
    lines: tuple[str, ...]
    running_title: str = ""  # e.g. "CHAPTER 2: Infectious Diseases" when the page carries one


def map_glyphs(text: str, stats: CleanStats) -> str:
    for name, pattern, repl in GLYPH_RULES:
        def _sub(m: re.Match[str], name: str = name, repl: str | None = repl) -> str:
            stats.glyphs_mapped[name] += len(m.group(0))
            return repl if repl is not None else _ARROW_FOR[name] * len(m.group(0))
        text = pattern.sub(_sub, text)
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if (cat in ("Co", "Cs") or (cat == "Cc" and ch not in "\n\t")) and ch != UNMAPPED_MARK:
            stats.unmapped_glyphs[f"U+{ord(ch):04X}"] += 1
            out.append(UNMAPPED_MARK)
        else:
            out.append(ch)
    return "".join(out)


def _mask(line: str) -> str:
    return re.sub(r"\d+", "#", line.strip().lower())


EDGE_LINES = 3  # running headers/footers sit within this many lines of the top or bottom of a page


def _edges(lines: list[str]) -> list[str]:
    return lines[:EDGE_LINES] + lines[-EDGE_LINES:] if len(lines) > 2 * EDGE_LINES else lines


def frequent_lines(pages: list[Page], share: float) -> set[str]:
    """Digit-masked line forms that recur on at least `share` of pages and carry letters."""
    counts: Counter = Counter()
    for p in pages:
        counts.update({_mask(line) for line in _edges(p.text.splitlines()) if re.search(r"[A-Za-z]{3}", line)})
    threshold = max(3, int(share * len(pages)))
    return {form for form, n in counts.items() if n >= threshold}


# a running title that wraps ("… CHAPTER 3: HIV/AIDS and Sexually Transmitted" / "Infections") leaves its tail
# on the next line: the same line after the same title on at least this share of the pages carrying it
TITLE_TAIL_SHARE = 0.5


def title_tails(pages: list[Page], running: list[re.Pattern[str]]) -> set[tuple[str, str]]:
    """(title line, next line) pairs where the next line is the wrapped tail of a running title: it follows
    that title on at least TITLE_TAIL_SHARE of the (3 or more) pages carrying it, and has no digit."""
    seen: Counter = Counter()
    pairs: Counter = Counter()
    for p in pages:
        lines = [line.strip() for line in p.text.splitlines()]
        for i, s in enumerate(lines):
            if any(r.fullmatch(s) for r in running):
                seen[s] += 1
                if i + 1 < len(lines) and lines[i + 1] and not re.search(r"\d", lines[i + 1]):
                    pairs[(s, lines[i + 1])] += 1
    return {(t, n) for (t, n), k in pairs.items() if seen[t] >= 3 and k >= TITLE_TAIL_SHARE * seen[t]}


def clean_pages(pages: list[Page], settings: CleanSettings | None = None) -> tuple[list[CleanPage], CleanStats]:
    settings = settings or CleanSettings()
    stats = CleanStats()
    running = [re.compile(p, re.IGNORECASE) for p in settings.running_patterns]
    frequent = frequent_lines(pages, settings.frequent_line_share)
    tails = title_tails(pages, running)
    chapter_re = re.compile(r"CHAPTER\s*(\d+)\s*:\s*(.+)$", re.IGNORECASE)
    out = []
    for p in pages:
        lines = p.text.splitlines()
        running_title = ""
        # the printed-number line that gave the page its label: drop the last such line only
        label_idx = None
        if p.label and not p.label_inferred:
            for i in range(len(lines) - 1, -1, -1):
                if lines[i].strip() == p.label:
                    label_idx = i
                    break
        kept = []
        tail_at = -1
        for i, raw in enumerate(lines):
            s = raw.strip()
            if i == label_idx:
                continue
            if i == tail_at:  # the wrapped end of the running title just removed
                running_title = f"{running_title} {s}".strip() if running_title else running_title
                stats.running_lines_removed += 1
                continue
            at_edge = i < EDGE_LINES or i >= len(lines) - EDGE_LINES
            if any(r.fullmatch(s) for r in running) or (at_edge and _mask(s) in frequent):
                if m := chapter_re.search(s):
                    running_title = f"CHAPTER {m.group(1)}: {m.group(2).strip()}"
                if i + 1 < len(lines) and (s, lines[i + 1].strip()) in tails:
                    tail_at = i + 1
                stats.running_lines_removed += 1
                continue
            if not s:
                continue
            kept.append(map_glyphs(raw.rstrip(), stats))
        out.append(CleanPage(pdf_page=p.pdf_page, label=p.label, lines=tuple(kept), running_title=running_title))
    return out, stats
