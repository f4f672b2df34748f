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

Gates read only the version directories, so they run on a new version before CURRENT points at it.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ragcds.config import GateSettings
from ragcds.files import read_jsonl
from ragcds.index import store


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


def _norm(line: str) -> str:
    return " ".join(line.split())


@dataclass
class VersionData:
    """What the gates read from one version directory."""

    manifest: dict
    chunks: list[dict]
    pages: list[dict]
    structure: dict

    @classmethod
    def load(cls, vdir: Path) -> VersionData:
        import json

        vdir = Path(vdir)
        structure = json.loads((vdir / "structure.json").read_text(encoding="utf-8"))
        pages = read_jsonl(vdir / "pages.jsonl") if (vdir / "pages.jsonl").exists() else []
        return cls(store.read_manifest(vdir), read_jsonl(vdir / "chunks.jsonl"), pages, structure)

    @property
    def stats(self) -> dict:
        return self.manifest.get("stats", {})

    @property
    def toc_coverage(self) -> float:
        s = self.stats
        return s.get("toc_found", 0) / s["toc_entries"] if s.get("toc_entries") else 0.0

    @property
    def unmapped(self) -> int:
        return sum(self.stats.get("clean", {}).get("unmapped_glyphs", {}).values())


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


def instruction_findings(chunks: Iterable[dict]) -> list[tuple[str, str]]:
    """(phrase, where) for every instruction-like phrase in the chunks; where = §section p. label."""
    out = []
    for c in chunks:
        for phrase in instruction_like(c["text"]):
            pages = ",".join(c.get("printed_pages") or [str(p) for p in c.get("pdf_pages", [])])
            out.append((phrase, f"§{c.get('section') or c.get('title', '')} p. {pages}"))
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
        kept.update(_norm(x) for x in c["text"].split("\n"))
        headings.update(_norm(h) for h in c.get("heading_path", []))
    lost = []
    for page in data.pages:
        if page["pdf_page"] in non_indexed:
            continue
        for line in page["lines"]:
            n = _norm(line)
            if not n or not re.search(r"\d", n) or n in kept:
                continue
            head = re.match(r"^(\d{1,2}(?:\.\d{1,2}){1,4})\.?\s*\S", n)
            if (
                head
                and head.group(1) in numbers
                or (re.search(r"[A-Za-z]{3}", n) and any(h == n or h.startswith(n + " ") for h in headings))
            ):
                continue  # a heading ("2.1 BACTERIAL INFECTIONS", "Appendix 1")
            lost.append(f"p. {page.get('label') or page['pdf_page']}: {n}")
    return lost


SectionSearch = Callable[[Path, Sequence[str], int], list[list[str]]]  # (version dir, queries, k) -> sections


def retrieval_self_test(
    vdir: Path,
    data: VersionData,
    search: SectionSearch,
    settings: GateSettings,
    priority_sections: Iterable[str] = (),
) -> tuple[int, int, list[str]]:
    """(hits, queried, misses): each sampled section's title must retrieve a chunk of it in the top k.
    ``search`` is ``ragcds.retrieve.version_search(embedder)`` (passed in by the caller)."""
    titles: dict[str, str] = {}
    for c in data.chunks:
        if c["section"] and c["title"].strip():
            titles.setdefault(c["section"], c["title"])
    numbers = list(titles)
    sample = numbers
    if settings.self_test_sample and len(numbers) > settings.self_test_sample:
        first = [n for n in dict.fromkeys(priority_sections) if n in titles][: settings.self_test_sample]
        rest = [n for n in numbers if n not in set(first)]
        rng = random.Random(0)  # a fixed sample, so the same version always gets the same test
        sample = first + rng.sample(rest, settings.self_test_sample - len(first))
    if not sample:
        return 0, 0, []
    results = search(vdir, [titles[n] for n in sample], settings.self_test_top_k)
    misses = [f"§{n} {titles[n]}" for n, sections in zip(sample, results, strict=True) if n not in sections]
    return len(sample) - len(misses), len(sample), misses


def run_gates(
    new_vdir: Path,
    prev_vdir: Path | None,
    search: SectionSearch,
    settings: GateSettings | None = None,
    priority_sections: Iterable[str] = (),
) -> GateReport:
    """Run every gate on ``new_vdir`` (compared with ``prev_vdir`` when given)."""
    s = settings or GateSettings()
    new = VersionData.load(new_vdir)
    old = VersionData.load(prev_vdir) if prev_vdir else None
    out: list[GateResult] = []

    pages = new.stats.get("pages", 0)
    if old:
        floor = old.stats.get("pages", 0) * (1 - s.page_margin)
        out.append(
            GateResult(
                "pages",
                pages >= floor,
                str(pages),
                f"≥ {floor:.0f} (previous {old.stats.get('pages', 0)} − {s.page_margin:.0%})",
            )
        )
    else:
        out.append(GateResult("pages", pages > 0, str(pages), "> 0 (no previous version)"))

    cov = new.toc_coverage
    if old:
        floor_cov = old.toc_coverage - s.toc_margin
        out.append(
            GateResult(
                "toc_coverage",
                cov >= floor_cov,
                f"{cov:.1%}",
                f"≥ {floor_cov:.1%} (previous {old.toc_coverage:.1%} − {s.toc_margin:.0%})",
            )
        )
    else:
        out.append(GateResult("toc_coverage", True, f"{cov:.1%}", "informational (no previous version)"))

    lost = lost_digit_lines(new)
    out.append(
        GateResult(
            "digit_lines",
            len(lost) <= s.max_lost_digit_lines,
            f"{len(lost)} lost",
            f"≤ {s.max_lost_digit_lines}",
            "body lines with a digit missing from every chunk",
            lost[:10],
        )
    )

    glyphs = new.unmapped
    limit = old.unmapped + s.unmapped_glyph_margin if old else s.unmapped_glyph_max
    basis = f"previous {old.unmapped} + {s.unmapped_glyph_margin}" if old else "no previous version"
    found = new.stats.get("clean", {}).get("unmapped_glyphs", {})
    out.append(
        GateResult(
            "unmapped_glyphs",
            glyphs <= limit,
            str(glyphs),
            f"≤ {limit} ({basis})",
            ", ".join(f"{k}×{v}" for k, v in sorted(found.items())),
        )
    )

    doses = dose_count((c["text"] for c in new.chunks), s.dose_pattern)
    if old:
        before = dose_count((c["text"] for c in old.chunks), s.dose_pattern)
        allowed = max(s.dose_slack, int(before * s.dose_margin))
        out.append(
            GateResult(
                "dose_patterns",
                abs(doses - before) <= allowed,
                f"{doses} ({doses - before:+d})",
                f"within ±{allowed} of previous {before}",
            )
        )
    else:
        out.append(GateResult("dose_patterns", True, str(doses), "informational (no previous version)"))

    out.append(_instructions_gate(new, old))
    hits, queried, misses = retrieval_self_test(new_vdir, new, search, s, priority_sections)
    rate = hits / queried if queried else 1.0
    out.append(
        GateResult(
            "retrieval",
            rate >= s.self_test_min_rate,
            f"{hits}/{queried} ({rate:.0%})",
            f"≥ {s.self_test_min_rate:.0%} of section titles retrieve their section in top "
            f"{s.self_test_top_k}",
            examples=misses[:10],
        )
    )
    return GateReport(out, prev_vdir.name if prev_vdir else None)


def _instructions_gate(new: VersionData, old: VersionData | None) -> GateResult:
    """Fails on instruction-like phrases the previous version did not have (all of them without one)."""
    found = instruction_findings(new.chunks)
    known = {phrase for phrase, _ in instruction_findings(old.chunks)} if old else set()
    fresh = [(phrase, where) for phrase, where in found if phrase not in known]
    return GateResult(
        "instructions",
        not fresh,
        f"{len(fresh)} new" + (f" ({len(found) - len(fresh)} known)" if len(found) > len(fresh) else ""),
        "0 instruction-like passages" + (" beyond the previous version's" if old else ""),
        "text aimed at a language model (prompt injection) in the guideline" if fresh else "",
        [f"{where}: {phrase!r}" for phrase, where in fresh[:10]],
    )
