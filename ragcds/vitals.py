"""Measured values a question states (blood pressure, SpO2, blood glucose, pulse, temperature, breathing rate)
and the threshold conditions the data files write over them (``@glucose<3``, ``@sbp>=180|@dbp>=110``): one home
for reading a patient's measurements, used by triage (``triage_signs.tsv``) and by the lexicon
(``lexicon.tsv``: a measured finding the book names, "@glucose<3" → hypoglycaemia)."""

from __future__ import annotations

import operator
import re

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


def met(conds: list[tuple[str, str, float]], measured: dict[str, float]) -> list[str]:
    """The conditions the measured values meet, as "name value" ("glucose 2.1"); any one met is enough."""
    return [f"{name} {measured[name]:g}" for name, op, value in conds
            if name in measured and OPS[op](measured[name], value)]
