"""What a question states about its patient, read one way everywhere: the measured values (blood pressure,
SpO2, blood glucose, pulse, temperature, breathing rate) with the threshold conditions the data files write over
them (``@glucose<3``, ``@sbp>=180|@dbp>=110``), and the findings it denies ("no difficulty breathing"). Used by
triage (``triage_signs.tsv``) and by the lexicon (``lexicon.tsv``: a measured finding the book names, "@glucose<3"
→ hypoglycaemia; a denied lay finding adds no clinical word)."""

from __future__ import annotations

import operator
import re
from collections.abc import Sequence

_VALUES: dict[str, re.Pattern[str]] = {
    "sbp": re.compile(r"\b(?:BP|blood pressure)\s*(?:is|of|was|:)?\s*(\d{2,3})\s*/\s*\d{2,3}", re.I),
    "dbp": re.compile(r"\b(?:BP|blood pressure)\s*(?:is|of|was|:)?\s*\d{2,3}\s*/\s*(\d{2,3})", re.I),
    "spo2": re.compile(r"\b(?:oxygen saturation|saturation|SpO2|sats?)\s*(?:is|of|was|:)?\s*(\d{2,3})\s*%", re.I),
    "glucose": re.compile(r"\b(?:blood (?:sugar|glucose)|glucose|sugar|RBS|FBS|glucometer)\s*(?:level|reading)?\s*"
                          r"(?:is|of|was|:)?\s*(\d+(?:\.\d+)?)\s*mmol", re.I),
    "pulse": re.compile(r"\b(?:pulse|heart rate|HR)\s*(?:rate)?\s*(?:is|of|was|:)?\s*(\d{2,3})", re.I),
    "temp": re.compile(r"\b(\d{2}(?:\.\d)?)\s*°?\s*C\b"),
    "rr": re.compile(r"\b(?:breathing|breathes|respiratory rate|resp(?:iratory)? rate|RR)\s*(?:is|of|at|:)?\s*(\d{2,3})"
                     r"(?:\s*(?:times|breaths))?", re.I),
}
NAMES = tuple(_VALUES)
OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_CONDITION = re.compile(r"@(\w+)(<=|>=|<|>)([\d.]+)")


def vitals(question: str) -> dict[str, float]:
    """The first value of each measurement the question states: {"sbp": 186.0, "glucose": 2.1, …}."""
    out = {}
    for name, rx in _VALUES.items():
        m = rx.search(question)
        if m:
            out[name] = float(m.group(1))
    return out


def conditions(text: str) -> list[tuple[str, str, float]]:
    """The (measurement, operator, threshold) conditions of a data cell: "@sbp>=180|@dbp>=110" → two."""
    return [(m.group(1), m.group(2), float(m.group(3))) for m in _CONDITION.finditer(text)]


def met(conds: Sequence[tuple[str, str, float]], measured: dict[str, float]) -> list[str]:
    """The conditions the measured values meet, as "name value" ("glucose 2.1"); any one met is enough."""
    return [f"{name} {measured[name]:g}" for name, op, value in conds
            if name in measured and OPS[op](measured[name], value)]


# a finding the question denies ("no difficulty breathing", "she has not had any fits"): a negation in its clause
# (from the last clause break before it), at most NEGATION_WORDS words before it (NegEx's window is five)
_NEGATION = re.compile(r"\b(no|not|without|denies|nor|never|none|absent|normal)\b", re.I)
_CLAUSE_END = re.compile(r"[.;:!?]|,\s*(but|and)\b|\bbut\b")
NEGATION_WORDS = 6


def negated(text: str, start: int) -> bool:
    """Is the match at `start` denied: a negation in its clause at most NEGATION_WORDS words before it ("no lip
    swelling and no difficulty breathing"; not "who is not pregnant has had high fever with shaking chills")?"""
    head = text[:start]
    cut = max((m.end() for m in _CLAUSE_END.finditer(head)), default=0)
    words = head[cut:].split()
    return bool(_NEGATION.search(" ".join(words[-NEGATION_WORDS:])))
