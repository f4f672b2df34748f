"""Lay and health-worker words → the guideline's clinical words, read from a reviewed data file.

The vocabulary lives in ``ragcds/data/lexicon.tsv`` (package data), not in code: one ``lay<TAB>clinical``
pair a line, several clinical terms separated by ``; ``. A question is *expanded*: the clinical terms of every
lay phrase it contains (whole words, case-insensitive) are appended, so BM25 and the embedder meet the book's
words while the question's own words still count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ragcds.files import package_data
from ragcds.findings import NAMES, conditions, met, negated, vitals

LEXICON_FILE = "lexicon.tsv"


@dataclass(frozen=True)
class Lexicon:
    pairs: tuple[tuple[str, tuple[str, ...]], ...]  # (lay phrase, clinical terms), longest phrase first
    # (threshold conditions, clinical terms): a measured value the book names ("@glucose<3" → hypoglycaemia)
    measured: tuple[tuple[tuple[tuple[str, str, float], ...], tuple[str, ...]], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Lexicon:
        rows: dict[str, tuple[str, ...]] = {}
        measured: list[tuple[tuple[tuple[str, str, float], ...], tuple[str, ...]]] = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.startswith("#") or line.startswith("lay\t"):
                continue
            lay, sep, clinical = line.partition("\t")
            terms = tuple(t.strip() for t in clinical.split(";") if t.strip())
            if not sep or not lay.strip() or not terms:
                raise ValueError(f"{LEXICON_FILE}:{n}: expected 'lay<TAB>clinical[; clinical]', got {line!r}")
            if lay.startswith("@"):
                conds = conditions(lay)
                if not conds or any(name not in NAMES for name, _, _ in conds):
                    raise ValueError(f"{LEXICON_FILE}:{n}: a measured finding is @name<op>value with name one of "
                                     f"{', '.join(NAMES)}, got {lay!r}")
                measured.append((tuple(conds), terms))
                continue
            rows[" ".join(lay.lower().split())] = terms
        return cls(tuple(sorted(rows.items(), key=lambda kv: (-len(kv[0]), kv[0]))), tuple(measured))

    @classmethod
    def load(cls, path: Path | None = None) -> Lexicon:
        if path is not None:
            return cls.parse(Path(path).read_text(encoding="utf-8"))
        return _packaged()

    def matches(self, question: str, denied: bool = True) -> list[tuple[str, tuple[str, ...]]]:
        """The (lay phrase, clinical terms) pairs found in the question, in question order; a phrase inside a
        longer matched one (``fit`` inside ``fit and well``) is not counted twice. ``denied=False`` leaves out
        a phrase the question denies ("she has not had any fits", findings.negated)."""
        q = " ".join(question.lower().split())
        taken: list[tuple[int, int]] = []
        out: list[tuple[int, str, tuple[str, ...]]] = []
        for lay, terms in self.pairs:
            if lay not in q:  # the phrase regex only runs where the phrase occurs (most of a retrieve's cost)
                continue
            for m in re.finditer(rf"(?<![\w-]){re.escape(lay)}(?![\w-])", q):
                if not any(a <= m.start() < b or a < m.end() <= b for a, b in taken):
                    taken.append(m.span())
                    if denied or not negated(q, m.start()):
                        out.append((m.start(), lay, terms))
                    break
        return [(lay, terms) for _, lay, terms in sorted(out)]

    def expand(self, question: str) -> str:
        """The question plus the clinical terms it lacks, e.g. ``fits for 2 days`` → ``fits for 2 days
        (convulsions; seizures)``; unchanged when nothing matched. A denied finding adds nothing: "she has not
        had any fits" must not bring the eclampsia sections forward. A measured value the book names adds its
        name ("glucometer reading 2.1 mmol/L" → hypoglycaemia)."""
        low = question.lower()
        extra = [t for _, terms in self.matches(question, denied=False) for t in terms if t.lower() not in low]
        if self.measured and (values := vitals(question)):
            extra += [t for conds, terms in self.measured if met(conds, values) for t in terms if t.lower() not in low]
        extra = list(dict.fromkeys(extra))
        return f"{question} ({'; '.join(extra)})" if extra else question


@lru_cache(maxsize=1)
def _packaged() -> Lexicon:
    return Lexicon.parse(package_data(LEXICON_FILE))


# A patient's measurements in a presentation (age, vitals, duration): numbers that match dose tables by
# chance in BM25. Doses ("mg", "ml") are kept.
_DOSE_UNIT = r"(?:mg|g|mcg|µg|micrograms?|ml|iu|units?|mmol|g/dl)\b"
_PATIENT_UNIT = r"(?:%|°\s?C|mmHg|/min(?:ute)?|bpm|kg|cm|years?|yrs?|months?|weeks?|days?|hours?|hrs?)"
_MEASUREMENT = re.compile(
    rf"(?<![\w.])\d+(?:[.,/]\d+)*(?![.,/]?\d)(?!\s*{_DOSE_UNIT})\s*(?:-\s*)?{_PATIENT_UNIT}?(?![\w/])",
    re.I,
)


# "burning" is a sensation in a presentation ("burning pain", "burning on passing urine"), but stems to the
# injury's "burn": BM25 then brings §1.2.3 Burns forward for shingles or cystitis. Left out unless the question
# speaks of a burn itself.
_SENSATION = re.compile(r"\bburning\b", re.I)
_INJURY = re.compile(r"\b(burns?|burnt|burned|scald\w*)\b", re.I)


def strip_measurements(question: str) -> str:
    """The question without bare numbers and patient measurements (``pulse 130``, ``39.8 °C``, ``5-year-old``)
    and without a sensation word that stems to an injury (``burning``); numbers with a dose unit (``500 mg``)
    stay."""
    text = _MEASUREMENT.sub(" ", question)
    if not _INJURY.search(text):
        text = _SENSATION.sub(" ", text)
    return " ".join(text.split())
