"""Extractive backend (the default when no model is given): no LLM, only guideline sentences, each cited.

Passages are split into units (a bullet, a sentence, a table row). A unit's score is the idf-weighted
share of the question's content words it contains (crude 5-letter stems), damped for very short and very
long units, plus a bonus for the passage's rank (0.1 / rank). The top units answer in prose; for xml/array the fields
are filled from the passages (rules in docs/formats.md).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ragcds.generate.base import GenerationRequest
from ragcds.generate.formats import render
from ragcds.retrieve import Hit

STOP = set(
    """a an the and or of to in on at for with by from is are was were be been being this that these
those what which who whom how when where why should would could can do does did i we you he she it they them
his her their our my me us your has have had not no yes any all some there if then than as into about after
before over under also other more most such only very so but may might must will shall per each both its
""".split()
)
BULLET = re.compile(r"^\s*([~•\-–—»¾*]|o|[frwy](?=\s+[A-Z]))\s+")
SENT_END = re.compile(r"[.:;!?)]\s*$")
EMERGENCY = re.compile(
    r"\b(unconscious\w*|coma\w*|convuls\w*|fitting|seizur\w*|shock|not breathing|apnoe\w*|cyanos\w*|"
    r"cyanosed|anaphyla\w*|poison\w*|status epilepticus|severe bleeding|haemorrhag\w*|grunting|"
    r"chest pain|cannot drink|unable to drink|altered consciousness|respiratory distress|silent chest|"
    r"ketoacidosis|burns?)\b",
    re.IGNORECASE,
)
URGENT = re.compile(
    r"\b(severe\w*|refer\w*|admi(t|ssion)\w*|urgent\w*|danger sign\w*|dehydrat\w*|high fever|"
    r"newborn|neonat\w*|pregnan\w*|fast breathing|chest indrawing|psychos\w*|blood)\b",
    re.IGNORECASE,
)
ACTION = re.compile(
    r"\b(give|treat|start|administer|refer|admit|stop|avoid|remove|wash|keep|ensure|manage|"
    r"counsel|advise|rehydrat\w*|insert|apply|monitor)\b",
    re.IGNORECASE,
)
NEXT = re.compile(
    r"\b(refer\w*|review|follow[- ]?up|monitor\w*|investigat\w*|test\w*|check|repeat|reassess\w*|"
    r"confirm\w*|return)\b",
    re.IGNORECASE,
)
FLAG = re.compile(
    r"\b(danger\w*|refer\w*|severe\w*|urgent\w*|emergenc\w*|shock|convuls\w*|unconscious\w*|"
    r"death|fatal|complication\w*|warning)\b",
    re.IGNORECASE,
)
MANAGEMENT = re.compile(r"^\s*(management|treatment)\b", re.IGNORECASE)


def stems(text: str) -> set[str]:
    words = re.findall(r"[a-z][a-z0-9]+", text.lower())
    return {w[:5] for w in words if w not in STOP and len(w) > 2}


@dataclass(frozen=True)
class Unit:
    n: int  # passage number (1-based)
    text: str
    in_management: bool
    order: int


def units(passages: Sequence[Hit]) -> list[Unit]:
    """Bullets, sentences and table rows of the passages, with wrapped lines joined."""
    out: list[Unit] = []
    for n, hit in enumerate(passages, 1):
        chunk = hit.chunk
        mgmt = bool(MANAGEMENT.match(chunk.subheading or ""))
        cur: list[str] = []
        prev = ""
        for line in chunk.text.split("\n"):
            if not line.strip():
                continue
            if MANAGEMENT.match(line) and len(line.split()) <= 4:
                mgmt = True
            if cur and (BULLET.match(line) or SENT_END.search(prev) or len(prev.strip()) < 45):
                out.append(Unit(n, " ".join(cur), mgmt, len(out)))
                cur = []
            cur.append(BULLET.sub("", line).strip())
            prev = line
        if cur:
            out.append(Unit(n, " ".join(cur), mgmt, len(out)))
    return [u for u in out if len(u.text.split()) >= 3]


def score(unit: Unit, q: set[str], idf: dict[str, float]) -> float:
    """idf-weighted share of the question's stems in the unit, damped for very short (< 8 words) and long
    (> 30 words) units, plus 0.1 / passage rank."""
    words = len(unit.text.split())
    total = sum(idf.get(w, 0.0) for w in q) or 1.0
    coverage = sum(idf.get(w, 0.0) for w in q & stems(unit.text)) / total
    length = min(1.0, words / 8) / math.sqrt(max(1.0, words / 30))
    return coverage * length + 0.1 / unit.n


def ranked(passages: Sequence[Hit], question: str) -> list[tuple[float, Unit]]:
    q = stems(question)
    us = units(passages)
    df: dict[str, int] = {}
    for u in us:
        for w in stems(u.text) & q:
            df[w] = df.get(w, 0) + 1
    idf = {w: math.log(1 + len(us) / df[w]) for w in df}  # question stems absent from every unit weigh 0
    return sorted(((score(u, q, idf), u) for u in us), key=lambda su: (-su[0], su[1].order))


def triage_level(question: str, passages: Sequence[Hit]) -> str:
    """emergency: emergency word in the question; urgent: urgent word in the question or emergency word in
    the top passage; else routine."""
    top = passages[0].chunk.text if passages else ""
    if EMERGENCY.search(question):
        return "emergency"
    if URGENT.search(question) or EMERGENCY.search(top):
        return "urgent"
    return "routine"


def confidence(best: float, n_passages: int) -> str:
    if n_passages == 0:
        return "low"
    return "high" if best >= 0.5 else "medium" if best >= 0.25 else "low"


def _cite(u: Unit, limit: int = 110) -> str:
    text = u.text if len(u.text) <= limit else u.text[:limit].rsplit(" ", 1)[0] + "…"
    return f"{text} [{u.n}]"


def _same_text(u: Unit) -> str:
    return " ".join(u.text.lower().split())


def _pick(
    pool: list[tuple[float, Unit]], rx: re.Pattern | None, used: set, k: int, prefer_mgmt: bool = False
) -> list[Unit]:
    """Best k units matching rx, skipping units already used (by position or by identical text: the book
    repeats some lines on consecutive pages)."""
    cands = [
        (s + (0.5 if prefer_mgmt and u.in_management else 0.0), u)
        for s, u in pool
        if (rx is None or rx.search(u.text)) and u.order not in used
    ]
    cands.sort(key=lambda su: (-su[0], su[1].order))
    picked: list[Unit] = []
    for _, u in cands:
        if len(picked) == k:
            break
        if _same_text(u) not in used:
            picked.append(u)
            used.update((u.order, _same_text(u)))
    return picked


def triage_fields(question: str, passages: Sequence[Hit]) -> dict:
    pool = ranked(passages, question)
    used: set = set()
    actions = _pick(pool, ACTION, used, 3, prefer_mgmt=True)
    steps = _pick(pool, NEXT, used, 2)
    flags = _pick(pool, FLAG, used, 3)
    fallback = [u for _, u in pool if u.order not in used][:1]
    top = passages[0].chunk if passages else None
    return {
        "level": triage_level(question, passages),
        "condition": f"{top.title} [1]" if top else "Not found in the UCG passages provided",
        "confidence": confidence(pool[0][0] if pool else 0.0, len(passages)),
        "actions": [_cite(u) for u in actions or fallback] or ["Consult the UCG 2023"],
        "next_steps": [_cite(u) for u in steps] or ["Review the cited UCG section"],
        "red_flags": [_cite(u) for u in flags] or ["None listed in the passages provided"],
    }


def prose(question: str, passages: Sequence[Hit], k: int = 4) -> str:
    if not passages:
        return "No UCG passages were provided, so the extractive backend cannot answer (it has no model)."
    best = sorted([u for _, u in ranked(passages, question)[:k]], key=lambda u: (u.n, u.order))
    lines = [f"- {u.text} [{u.n}]" for u in best]
    return "From the Uganda Clinical Guidelines 2023:\n" + "\n".join(lines)


class ExtractiveGenerator:
    """Answers with the most relevant guideline sentences, each cited [n]; always parses."""

    backend = "extractive"
    model_id = "extractive"
    supports_system = True

    def generate(self, request: GenerationRequest) -> str:
        passages = list(request.passages)
        if request.format == "prose":
            return prose(request.question, passages)
        return render(triage_fields(request.question, passages), request.format)
