"""Scope policy (docs/policy.md): treatment/dosing questions, out-of-scope questions, dose post-check.

The model never generates doses. A question that asks for treatment, a drug choice or a dose is answered
under one of two policies:
- ``quote`` (default): the guideline's own treatment text is quoted verbatim with its citation;
- ``refuse``: no answer is generated; the user is pointed to the cited section (Crane behaviour).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ragcds.ingest.chunk import Chunk
from ragcds.retrieve import Hit

POLICIES: tuple[str, ...] = ("quote", "refuse")

# Asking for a drug, a dose or a regimen.
DOSING = re.compile(
    r"\b(dos(e|es|age|ing)|how much (\w+ ){0,2}(fluid|drug|medicine|ors|insulin|oxygen)|regimens?|prescribe"
    r"|drug of choice|eye drops|antibiotics?\b(?! (are|is) )"
    r"|which (medicine|drug|fluid|antiviral)s?|what (medicine|drug|fluid)s?|what can be given"
    r"|what should (I|we) give|first[- ]line (antiviral|drug|medicine)|induction treatment|how fast)\b",
    re.IGNORECASE,
)
# Asking how to treat or manage (vignettes: "what is this and how should I treat it?").
TREATING = re.compile(
    r"\b(how (should|do|would|can) (I|we|you|he|she|it|they|one)( \w+)? (be )?(treat|manag)\w*"
    r"|how is it treated|(what|which) treatment|treatment (should|regimen)|key treatment|treat(ed)? at)\b",
    re.IGNORECASE,
)
# Lines of a passage that carry treatment (quoted verbatim under the quote policy).
TREATMENT_HEAD = re.compile(
    r"^\s*(management|treatment|drug treatment|prevention and management)\b", re.IGNORECASE
)
_UNIT = r"(?:mg/kg|mg/m2|mcg/kg|ml/kg|mg|mcg|µg|ug|g|kg|ml|mL|L|IU|iu|units?|mmol|drops?|tabs?|tablets?)"
DOSE = re.compile(
    rf"(?<![\w.])\d+(?:[.,]\d+)?(?:\s*(?:-|–|to|/|x)\s*\d+(?:[.,]\d+)?)*\s*{_UNIT}(?:\s*/\s*(?:kg|day|dose|hr|hour|h))?"
    r"(?![\w])"
)
# Out of scope when BOTH the best dense cosine and the best BM25 score are below these (calibrated on the
# dev set, see docs/policy.md).
OUT_OF_SCOPE_COSINE = 0.55
OUT_OF_SCOPE_BM25 = 6.2
OUT_OF_SCOPE_MESSAGE = (
    "This question is not covered by the Uganda Clinical Guidelines 2023 (no passage is relevant enough), "
    "so ragcds does not answer it. Consult another authoritative source."
)


@dataclass(frozen=True)
class Scope:
    treatment: bool  # asks for treatment, drug choice or dosing
    reason: str = ""  # the matched words


def classify(question: str) -> Scope:
    """Does the question ask for treatment, drug choice or dosing?"""
    for rx in (DOSING, TREATING):
        m = rx.search(question)
        if m:
            return Scope(True, m.group(0))
    return Scope(False)


def best_scores(retriever, question: str) -> tuple[float, float]:
    """(best dense cosine, best BM25 score) for the question."""
    dense = retriever.search(question, k=1, mode="dense")
    bm25 = retriever.search(question, k=1, mode="bm25")
    return (float(dense[0].score) if dense else 0.0), (float(bm25[0].score) if bm25 else 0.0)


def out_of_scope(
    retriever, question: str, cosine: float = OUT_OF_SCOPE_COSINE, bm25: float = OUT_OF_SCOPE_BM25
) -> tuple[bool, str]:
    """(is out of scope, explanation): both the best dense cosine and the best BM25 score are weak."""
    d, b = best_scores(retriever, question)
    outside = d < cosine and b < bm25
    return outside, f"best dense cosine {d:.3f} (threshold {cosine}), best BM25 {b:.2f} (threshold {bm25})"


def _norm(s: str) -> str:
    return re.sub(r"\s+", "", s.lower()).replace("–", "-").replace(",", ".")


def doses_in(text: str) -> list[str]:
    return [m.group(0) for m in DOSE.finditer(text)]


def check_doses(
    text: str, passages: Sequence[Hit], mark: str = "[dose removed: not in the cited UCG passages]"
) -> tuple[str, list[str]]:
    """Remove every dose string that does not occur in the passages. Returns (clean text, removed doses).
    The mark contains no '<', '|', '"' or newline, so a cleaned XML/array packet still parses."""
    source = _norm(" ".join(h.chunk.text for h in passages))
    removed: list[str] = []

    def sub(m: re.Match) -> str:
        if _norm(m.group(0)) in source:
            return m.group(0)
        removed.append(m.group(0))
        return mark

    return DOSE.sub(sub, text), removed


def treatment_lines(chunk: Chunk) -> str:
    """The Management/treatment part of a chunk, verbatim (from its heading on), else the whole chunk."""
    lines = chunk.text.split("\n")
    for i, line in enumerate(lines):
        if TREATMENT_HEAD.match(line):
            return "\n".join(lines[i:])
    return chunk.text


def treatment_tier(chunk: Chunk) -> int:
    """2: under or containing a Management/Treatment heading; 1: carries a dose; 0: neither."""
    if TREATMENT_HEAD.match(chunk.subheading or "") or any(TREATMENT_HEAD.match(x) for x in chunk.text.split("\n")):
        return 2
    return 1 if DOSE.search(chunk.text) else 0


def is_treatment_chunk(chunk: Chunk) -> bool:
    return treatment_tier(chunk) > 0


def treatment_chunks(
    passages: Sequence[Hit], all_chunks: Sequence[Chunk] = (), limit: int = 2
) -> list[Chunk]:
    """Treatment chunks to quote: those among the passages — chunks under a Management/Treatment heading before
    chunks that merely carry a number with a unit (a haemoglobin table is not treatment), then rank order —
    else the Management chunks of the top passage's section found in the index."""
    tiers = [(treatment_tier(h.chunk), i, h.chunk) for i, h in enumerate(passages)]
    found = [c for tier, _, c in sorted(tiers, key=lambda t: (-t[0], t[1])) if tier > 0]
    if passages and not found and all_chunks:
        section = passages[0].chunk.section
        found = [c for c in all_chunks if c.section == section and is_treatment_chunk(c)]
    return found[:limit]


def quote_block(chunks: Sequence[Chunk], numbers: Sequence[int]) -> str:
    """Verbatim quotation with citations, saying where it comes from."""
    parts = [
        "Treatment, quoted verbatim from the Uganda Clinical Guidelines 2023 (ragcds does not write doses):"
    ]
    for chunk, n in zip(chunks, numbers, strict=True):
        body = "\n".join(f"> {line}" for line in treatment_lines(chunk).split("\n"))
        parts.append(f"{body}\n— [{n}] {chunk.citation()}")
    return "\n\n".join(parts)


def refusal(chunks: Sequence[Chunk], numbers: Sequence[int]) -> str:
    where = "; ".join(f"[{n}] {c.citation()}" for c, n in zip(chunks, numbers, strict=True))
    tail = f" See {where}." if where else " See the relevant section of the UCG 2023."
    return (
        "ragcds does not give treatment, drug-choice or dosing advice. Follow the treatment section of the "
        "Uganda Clinical Guidelines 2023." + tail
    )
