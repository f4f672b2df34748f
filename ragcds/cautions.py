"""Reviewed cautions shown beside doubtful printed lines (``ragcds/data/cautions.tsv``).

The UCG prints a few lines that a reviewer doubts: a unit that looks misprinted ("Child: 10 mg/Kg per dose" of
digoxin, where the rest of the line is in micrograms), two table columns interleaved on one line, an instruction
missing its "not" ("If cervical ripening, proceed to cesarean section"), a note printed in another section. ragcds never
alters the book's text; it shows the caution under the line, marked as its own, naming no dose itself. Each
row names the PDF page and how the line reads; a corrected edition that no longer prints it simply matches
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ragcds.files import package_data, table_rows

CAUTIONS_FILE = "cautions.tsv"


@dataclass(frozen=True)
class Caution:
    pdf_page: int
    line: str  # a piece of the printed line, whitespace-normalised
    caution: str
    why: str

    def matches(self, pdf_page: int, text: str) -> bool:
        return pdf_page == self.pdf_page and _norm(self.line) in _norm(text)


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


def parse_cautions(text: str) -> tuple[Caution, ...]:
    out = []
    for n, row in table_rows(text):
        if not row.get("line") or not row.get("caution") or not (row.get("pdf_page") or "").isdigit():
            raise ValueError(f"{CAUTIONS_FILE} row {n}: needs pdf_page (a number), line and caution")
        out.append(Caution(int(row["pdf_page"]), row["line"], row["caution"], row.get("why") or ""))
    return tuple(out)


@lru_cache(maxsize=1)
def cautions() -> tuple[Caution, ...]:
    return parse_cautions(package_data(CAUTIONS_FILE))


def caution_for(pdf_page: int, text: str) -> str | None:
    """The reviewed caution for a printed line, if any."""
    return next((c.caution for c in cautions() if c.matches(pdf_page, text)), None)
