"""Validation gates: checks a new index version must pass before it goes live.

Each gate compares the new version with the previous live one (when there is one) against a threshold
from :class:`ragcds.config.GateSettings`:

=================  ===========================================================================
pages              page count not lower than the previous one by more than ``page_margin``
toc_coverage       contents coverage not lower than the previous one by more than ``toc_margin``
digit_lines        every cleaned body line with a digit appears in some chunk (whitespace-normalised)
unmapped_glyphs    private-use/control glyphs ≤ previous + ``unmapped_glyph_margin``
dose_patterns      count of dose patterns (``500 mg``, ``10 ml``...) within a margin of the previous one
instructions       no instruction-like text aimed at a language model ("ignore previous instructions",
                   chat-template tokens, an answer packet) beyond what the previous version had
retrieval          each sampled section's title retrieves that section in the top k for ≥ min rate
=================  ===========================================================================

Each gate is a small function ``(GateInput) -> GateResult`` in :data:`GATES`; add one there. Gates read the
versions handed to them (:class:`ragcds.index.version.VersionData`, each read once), so they run on a new
version before CURRENT points at it; the retrieval self-test gets its search function passed in.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field

from ragcds.config import GateSettings
from ragcds.index.version import VersionData
from ragcds.ingest.chunk import Chunk
from ragcds.ingest.structure import heading_number

# (version, queries, k) -> for each query the sections of its top-k hits: ragcds.retrieve.version_search(embedder)
SectionSearch = Callable[[VersionData, Sequence[str], int], list[list[str]]]


@dataclass
class GateResult:
    name: str
    passed: bool
    value: str  # what the new version has
    threshold: str  # what it had to meet
    detail: str = ""
    examples: list[str] = field(default_factory=list)


@dataclass
class GateReport:
    results: list[GateResult]
    previous: str | None  # version compared against

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failed(self) -> list[str]:
        return [r.name for r in self.results if not r.passed]

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "failed": self.failed,
            "previous": self.previous,
            "results": [asdict(r) for r in self.results],
        }


@dataclass
class GateInput:
    """What every gate gets: the new version, the previous live one (None on a first build), settings."""

    new: VersionData
    old: VersionData | None
    settings: GateSettings
    search: SectionSearch
    priority_sections: Sequence[str] = ()


def _norm(line: str) -> str:
    return " ".join(line.split())


# Text aimed at a language model, not at a clinician: a guideline never contains these. Kept specific (whole
# phrases, template tokens) so that clinical instructions ("follow the instructions on the label") never match.
INSTRUCTION_PATTERNS: tuple[str, ...] = (
    r"\b(?:ignore|disregard|forget|override)\s+(?:all\s+|any\s+|the\s+)?(?:of\s+the\s+)?(?:previous|prior|above"
    r"|earlier|preceding|foregoing|system|your|these)\s+(?:instructions?|prompts?|rules|directions|messages?)",
    r"\byou\s+are\s+(?:now\s+)?(?:an?\s+|the\s+)?(?:ai|assistant|language\s+model|chatbot|llm)\b",
    r"\bas\s+an\s+ai\b",
    r"\b(?:system|developer)\s+prompt\b",
    r"\bnew\s+instructions?\s*:",
    r"\b(?:respond|reply|answer|output)\s+only\s+with\b",
    r"<\|[a-z_]+\|>|\[/?INST\]|<<\s*/?SYS\s*>>|<(?:start|end)_of_turn>",
    r"^\s*(?:#+\s*)?(?:system|assistant|instruction|response)\s*:",  # a role line
    r"<r>\s*<t>",  # the triage packet this product writes
)
_INSTRUCTION_RX = re.compile("|".join(f"(?:{p})" for p in INSTRUCTION_PATTERNS), re.IGNORECASE | re.MULTILINE)


def instruction_like(text: str) -> list[str]:
    """The instruction-like phrases in ``text`` (lower-cased, whitespace-normalised)."""
    return [_norm(m.group(0)).lower() for m in _INSTRUCTION_RX.finditer(text)]


def instruction_findings(chunks: Iterable[Chunk]) -> list[tuple[str, str]]:
    """(phrase, where) for every instruction-like phrase in the chunks; where = §section p. label."""
    out = []
    for c in chunks:
        for phrase in instruction_like(c.text):
            pages = ",".join(c.printed_pages or [str(p) for p in c.pdf_pages])
            out.append((phrase, f"§{c.section or c.title} p. {pages}"))
    return out


def dose_count(texts: Iterable[str], pattern: str) -> int:
    rx = re.compile(pattern)
    return sum(len(rx.findall(t)) for t in texts)


def lost_digit_lines(data: VersionData) -> list[str]:
    """Cleaned body lines with a digit that appear in no chunk (``p. LABEL: line``).

    Contents pages (not indexed) are skipped; a recognised section heading line ("2.1 BACTERIAL
    INFECTIONS") counts as kept: headings live in the structure and the chunks' heading context, not in the
    chunk text.
    """
    sections = data.structure.get("sections", [])
    non_indexed = {p for s in sections if not s.get("indexable", True) for p in s.get("pdf_pages", [])}
    numbers = {s["number"] for s in sections if s.get("number")}
    kept: set[str] = set()
    headings: set[str] = set()
    for c in data.chunks:
        kept.update(_norm(x) for x in c.text.split("\n"))
        headings.update(_norm(h) for h in c.heading_path)
    lost = []
    for page in data.pages:
        if page["pdf_page"] in non_indexed:
            continue
        for line in page["lines"]:
            n = _norm(line)
            if n and re.search(r"\d", n) and n not in kept and not _is_heading(n, numbers, headings):
                lost.append(f"p. {page.get('label') or page['pdf_page']}: {n}")
    return lost


def _is_heading(line: str, numbers: set[str], headings: set[str]) -> bool:
    """A section heading line ("2.1 BACTERIAL INFECTIONS", "Appendix 1")."""
    num = heading_number(line)
    if num and "." in num and num in numbers:  # a numbered heading, never a dose line ("2 mg …")
        return True
    return bool(re.search(r"[A-Za-z]{3}", line)) and any(h == line or h.startswith(line + " ") for h in headings)


def retrieval_self_test(
    data: VersionData,
    search: SectionSearch,
    settings: GateSettings,
    priority_sections: Iterable[str] = (),
) -> tuple[int, int, list[str]]:
    """(hits, queried, misses): each sampled section's title must retrieve a chunk of it in the top k."""
    titles: dict[str, str] = {}
    for c in data.chunks:
        if c.section and c.title.strip():
            titles.setdefault(c.section, c.title)
    numbers = list(titles)
    sample = numbers
    if settings.self_test_sample and len(numbers) > settings.self_test_sample:
        first = [n for n in dict.fromkeys(priority_sections) if n in titles][: settings.self_test_sample]
        rest = [n for n in numbers if n not in set(first)]
        rng = random.Random(0)  # a fixed sample, so the same version always gets the same test
        sample = first + rng.sample(rest, settings.self_test_sample - len(first))
    if not sample:
        return 0, 0, []
    results = search(data, [titles[n] for n in sample], settings.self_test_top_k)
    misses = [f"§{n} {titles[n]}" for n, sections in zip(sample, results, strict=True) if n not in sections]
    return len(sample) - len(misses), len(sample), misses


def pages_gate(g: GateInput) -> GateResult:
    pages = g.new.stats.pages
    if not g.old:
        return GateResult("pages", pages > 0, str(pages), "> 0 (no previous version)")
    before, margin = g.old.stats.pages, g.settings.page_margin
    floor = before * (1 - margin)
    return GateResult("pages", pages >= floor, str(pages), f"≥ {floor:.0f} (previous {before} − {margin:.0%})")


def toc_coverage_gate(g: GateInput) -> GateResult:
    cov = g.new.stats.toc_coverage
    if not g.old:
        return GateResult("toc_coverage", True, f"{cov:.1%}", "informational (no previous version)")
    before, margin = g.old.stats.toc_coverage, g.settings.toc_margin
    floor = before - margin
    return GateResult(
        "toc_coverage", cov >= floor, f"{cov:.1%}", f"≥ {floor:.1%} (previous {before:.1%} − {margin:.0%})"
    )


def digit_lines_gate(g: GateInput) -> GateResult:
    lost = lost_digit_lines(g.new)
    limit = g.settings.max_lost_digit_lines
    return GateResult(
        "digit_lines", len(lost) <= limit, f"{len(lost)} lost", f"≤ {limit}",
        "body lines with a digit missing from every chunk", lost[:10],
    )


def unmapped_glyphs_gate(g: GateInput) -> GateResult:
    found = g.new.stats.unmapped_glyphs
    glyphs, s = sum(found.values()), g.settings
    before = sum(g.old.stats.unmapped_glyphs.values()) if g.old else 0
    limit = before + s.unmapped_glyph_margin if g.old else s.unmapped_glyph_max
    basis = f"previous {before} + {s.unmapped_glyph_margin}" if g.old else "no previous version"
    return GateResult(
        "unmapped_glyphs", glyphs <= limit, str(glyphs), f"≤ {limit} ({basis})",
        ", ".join(f"{k}×{v}" for k, v in sorted(found.items())),
    )


def dose_patterns_gate(g: GateInput) -> GateResult:
    s = g.settings
    doses = dose_count((c.text for c in g.new.chunks), s.dose_pattern)
    if not g.old:
        return GateResult("dose_patterns", True, str(doses), "informational (no previous version)")
    before = dose_count((c.text for c in g.old.chunks), s.dose_pattern)
    allowed = max(s.dose_slack, int(before * s.dose_margin))
    return GateResult(
        "dose_patterns", abs(doses - before) <= allowed, f"{doses} ({doses - before:+d})",
        f"within ±{allowed} of previous {before}",
    )


def instructions_gate(g: GateInput) -> GateResult:
    """Fails on instruction-like phrases the previous version did not have (all of them without one)."""
    found = instruction_findings(g.new.chunks)
    known = {phrase for phrase, _ in instruction_findings(g.old.chunks)} if g.old else set()
    fresh = [(phrase, where) for phrase, where in found if phrase not in known]
    return GateResult(
        "instructions",
        not fresh,
        f"{len(fresh)} new" + (f" ({len(found) - len(fresh)} known)" if len(found) > len(fresh) else ""),
        "0 instruction-like passages" + (" beyond the previous version's" if g.old else ""),
        "text aimed at a language model (prompt injection) in the guideline" if fresh else "",
        [f"{where}: {phrase!r}" for phrase, where in fresh[:10]],
    )


def retrieval_gate(g: GateInput) -> GateResult:
    s = g.settings
    hits, queried, misses = retrieval_self_test(g.new, g.search, s, g.priority_sections)
    rate = hits / queried if queried else 1.0
    return GateResult(
        "retrieval", rate >= s.self_test_min_rate, f"{hits}/{queried} ({rate:.0%})",
        f"≥ {s.self_test_min_rate:.0%} of section titles retrieve their section in top {s.self_test_top_k}",
        examples=misses[:10],
    )


GATES: tuple[Callable[[GateInput], GateResult], ...] = (
    pages_gate,
    toc_coverage_gate,
    digit_lines_gate,
    unmapped_glyphs_gate,
    dose_patterns_gate,
    instructions_gate,
    retrieval_gate,
)


def run_gates(
    new: VersionData,
    old: VersionData | None,
    search: SectionSearch,
    settings: GateSettings | None = None,
    priority_sections: Iterable[str] = (),
) -> GateReport:
    """Run every gate of :data:`GATES` on ``new`` (compared with ``old`` when given)."""
    g = GateInput(new, old, settings or GateSettings(), search, tuple(priority_sections))
    return GateReport([gate(g) for gate in GATES], old.path.name if old else None)
