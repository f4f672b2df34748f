"""Read a guideline PDF into pages with their printed page labels.

The label is read from the page text (a bare arabic or roman number line, as in a running footer) and
kept only where neighbouring pages agree on the same numbering offset, so stray numbers in tables are
not mistaken for page numbers. Pages without a readable label get one inferred from their neighbours
(marked ``label_inferred``). A /PageLabels tree in the PDF, when present, takes precedence.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragcds.errors import InputPDFError

_ROMAN = re.compile(r"^(?=[MDCLXVI])M*(C[MD]|D?C{0,3})(X[CL]|L?X{0,3})(I[XV]|V?I{0,3})$")
_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
_ARABIC = re.compile(r"^\d{1,4}$")
MIN_TEXT_CHARS = 200  # a document with less extractable text than this in total has no text layer


@dataclass(frozen=True)
class Page:
    pdf_page: int  # 1-based index in the PDF file
    text: str  # raw extracted text
    label: str  # printed page label ("100", "XLIV"); "" when unknown
    label_inferred: bool = False


def roman_to_int(s: str) -> int | None:
    s = s.upper()
    if not s or not _ROMAN.match(s):
        return None
    total = 0
    for a, b in zip(s, s[1:] + " ", strict=True):
        v = _ROMAN_VALUES[a]
        total += -v if b != " " and _ROMAN_VALUES[b] > v else v
    return total


def int_to_roman(n: int) -> str:
    out = []
    for value, sym in ((1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"),
                       (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")):
        while n >= value:
            out.append(sym)
            n -= value
    return "".join(out)


def _candidates(text: str) -> list[tuple[str, int, str]]:
    """Bare number lines of a page as (kind, value, as printed)."""
    out = []
    for line in text.splitlines():
        s = line.strip()
        if _ARABIC.match(s):
            out.append(("arabic", int(s), s))
        elif s.isupper() and (v := roman_to_int(s)) is not None:
            out.append(("roman", v, s))
    return out


def assign_labels(texts: list[str], window: int = 3) -> list[tuple[str, bool]]:
    """Printed label for each page text: (label, inferred). Pure function of the texts."""
    cands = [_candidates(t) for t in texts]
    offsets = [{(kind, i - v) for kind, v, _ in c} for i, c in enumerate(cands)]
    chosen: list[tuple[str, int] | None] = [None] * len(texts)  # (kind, offset)
    labels: list[tuple[str, bool]] = [("", False)] * len(texts)
    for i, c in enumerate(cands):
        best, best_support = None, 0
        for kind, v, printed in c:
            key = (kind, i - v)
            support = sum(
                key in offsets[j] for j in range(max(0, i - window), min(len(texts), i + window + 1)) if j != i
            )
            if support > best_support:
                best, best_support = (key, printed), support
        if best is not None:
            chosen[i] = best[0]
            labels[i] = (best[1], False)
    for i in range(len(texts)):
        if chosen[i] is not None:
            continue
        prev = next((chosen[j] for j in range(i - 1, -1, -1) if chosen[j]), None)
        nxt = next((chosen[j] for j in range(i + 1, len(texts)) if chosen[j]), None)
        key = prev if prev is not None and (nxt is None or nxt == prev or prev[0] == "arabic") else nxt
        if key is None:
            continue
        value = i - key[1]
        if value >= 1:
            labels[i] = (str(value) if key[0] == "arabic" else int_to_roman(value), True)
    return labels


def pdf_page_labels(reader) -> list[str] | None:
    """Labels from the PDF's own /PageLabels tree, or None when the PDF has none."""
    try:
        root = reader.trailer["/Root"]
        if "/PageLabels" not in root:
            return None
        return list(reader.page_labels)
    except Exception:  # a broken label tree is ignored, text labels are used instead
        return None


def check_pdf_file(path: Path) -> Path:
    """Cheap checks before any heavy work: exists, is a file, starts like a PDF."""
    path = Path(path)
    if not path.exists():
        raise InputPDFError(f"PDF not found: {path} — pass the path of the UCG PDF (or set UCG_PDF)")
    if path.is_dir():
        raise InputPDFError(f"{path} is a directory — pass the path of the PDF file itself")
    with path.open("rb") as fh:
        head = fh.read(1024)
    if b"%PDF-" not in head:
        raise InputPDFError(f"{path} is not a PDF (no %PDF header) — pass the UCG PDF file")
    return path


def read_pdf(
    path: Path,
    progress: Callable[[int, int], None] | None = None,
    extract: Callable[[Any], str] | None = None,
) -> list[Page]:
    """Extract text per page. Raises InputPDFError with the fix for unusable input.

    ``extract`` (a pypdf page → text) lets a caller reuse cached text of unchanged pages."""
    import pypdf
    from pypdf.errors import PdfReadError

    path = check_pdf_file(path)
    try:
        reader = pypdf.PdfReader(str(path))
        if reader.is_encrypted:
            try:
                ok = reader.decrypt("")
            except Exception:
                ok = 0
            if not ok:
                raise InputPDFError(
                    f"{path} is encrypted — decrypt it first (e.g. qpdf --decrypt in.pdf out.pdf) and ingest that"
                )
        n = len(reader.pages)
        texts = []
        for i, page in enumerate(reader.pages):
            texts.append(extract(page) if extract else page.extract_text() or "")
            if progress:
                progress(i + 1, n)
    except InputPDFError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise InputPDFError(f"{path} is corrupt or unreadable ({exc}) — obtain an intact copy of the PDF") from exc
    if n == 0:
        raise InputPDFError(f"{path} has no pages — obtain an intact copy of the PDF")
    if sum(len(t.strip()) for t in texts) < MIN_TEXT_CHARS:
        raise InputPDFError(
            f"{path} has no text layer (scanned images?) — run OCR first (e.g. ocrmypdf in.pdf out.pdf) and ingest that"
        )
    own = pdf_page_labels(reader)
    text_labels = assign_labels(texts)
    pages = []
    for i, t in enumerate(texts):
        label, inferred = text_labels[i]
        if own is not None:
            label, inferred = own[i], False
        pages.append(Page(pdf_page=i + 1, text=t, label=label, label_inferred=inferred))
    return pages
