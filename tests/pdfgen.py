"""Generates small guideline-shaped PDFs for tests: a contents page with dotted leaders and roman page
numbers, numbered sections over several body pages, running footers, printed page numbers, a flattened
table and dose lines. Sections are data, so tests can make two editions that differ in a few places."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path


@dataclass(frozen=True)
class SectionSpec:
    number: str
    title: str
    lines: tuple[str, ...] = ()
    new_page: bool = False  # start this section on a fresh page


CHAPTERS = {"1": "Emergencies and Trauma", "2": "Infectious Diseases"}


def _body(topic: str, drug: str, dose: str) -> tuple[str, ...]:
    return (
        f"{topic} is a common condition seen at health centres.",
        "Causes",
        f"~ Infection or exposure related to {topic.lower()}",
        "Clinical features",
        "~ Fever, weakness and poor feeding",
        f"~ Danger signs of {topic.lower()}: convulsions, unable to drink",
        "Management",
        "TREATMENT LOC",
        f"- Give {drug} {dose} every 8 hours for 5 days",
        "Child: 10 mg/kg every 8 hours",
        "- Refer if no improvement after 48 hours",
        "HC3",
    )


DEFAULT_SECTIONS: tuple[SectionSpec, ...] = (
    SectionSpec("1.1", "Common Emergencies", ("Emergencies need rapid assessment.",), new_page=True),
    SectionSpec("1.1.1", "Anaphylactic Shock", _body("Anaphylactic shock", "adrenaline", "0.5 mg")),
    SectionSpec("1.1.2", "Dehydration", (
        "Dehydration is loss of body water.",
        "Table: dehydration classification",
        "Sign No dehydration Some dehydration Severe dehydration",
        "Eyes Normal Sunken Very sunken",
        "Skin pinch Normal Slow Very slow",
        "Management",
        "- Give ORS 75 ml/kg over 4 hours",
        "- Zinc 20 mg once daily for 10 days",
    )),
    SectionSpec("1.2", "Trauma and Injuries", ("Injuries are common.",)),
    SectionSpec("1.2.1", "Snakebites", _body("Snakebite", "antivenom", "10 ml")),
    SectionSpec("2.1", "Bacterial Infections", ("Bacteria cause many diseases.",), new_page=True),
    SectionSpec("2.1.1", "Anthrax", _body("Anthrax", "ciprofloxacin", "500 mg")),
    SectionSpec("2.1.2", "Brucellosis", _body("Brucellosis", "doxycycline", "100 mg")),
    SectionSpec("2.1.3", "Typhoid Fever", _body("Typhoid fever", "azithromycin", "1 g")),
    SectionSpec("2.2", "Protozoal Parasites", ("Protozoa include malaria parasites.",)),
    SectionSpec("2.2.1", "Malaria", _body("Malaria", "artemether/lumefantrine", "80/480 mg")),
    SectionSpec("2.2.1.1", "Complicated/Severe Malaria", (
        "Severe malaria is a medical emergency.",
        "Management",
        "- Give IV artesunate 2.4 mg/kg at 0, 12 and 24 hours",
        "Child < 20 kg: 3 mg/kg per dose",
        "- Check blood glucose; treat hypoglycaemia",
    )),
)


@dataclass
class _Layout:
    lines_per_page: int = 30
    pages: list[list[str]] = field(default_factory=list)  # body lines per page


def _chapter(num: str) -> str:
    return num.split(".")[0]


def _paginate(sections: tuple[SectionSpec, ...], lines_per_page: int) -> tuple[list[tuple[str, list[str]]], dict]:
    """Body pages as (chapter, lines) and the first body page index of each section."""
    pages: list[tuple[str, list[str]]] = []
    starts: dict[str, int] = {}
    for s in sections:
        ch = _chapter(s.number)
        if not pages or s.new_page or pages[-1][0] != ch:
            pages.append((ch, []))
        block = [f"{s.number} {s.title}", *s.lines]
        for i, line in enumerate(block):
            if len(pages[-1][1]) >= lines_per_page:
                pages.append((ch, []))
            if i == 0:
                starts[s.number] = len(pages)
            pages[-1][1].append(line)
    return pages, starts


def make_guideline_pdf(
    path: Path,
    sections: tuple[SectionSpec, ...] = DEFAULT_SECTIONS,
    *,
    lines_per_page: int = 22,
    front_pages: int = 3,
    encrypt: bool = False,
    text_layer: bool = True,
    title: str = "Uganda Clinical Guidelines 2023",
) -> Path:
    """Write the PDF: front matter pages (cover + contents, roman-numbered), then body pages numbered 1..N."""
    from fpdf import FPDF

    pages, starts = _paginate(tuple(sections), lines_per_page)
    pdf = FPDF(format=(148, 210))  # A5 in mm
    pdf.set_auto_page_break(False)
    pdf.set_font("Helvetica", size=9)

    def page(lines: list[str], label: str | None, footer: str) -> None:
        pdf.add_page()
        y = 12
        for line in lines:
            if text_layer:
                pdf.set_xy(10, y)
                pdf.cell(0, 5, line)
            else:
                pdf.rect(10, y, min(120, 2 * len(line)), 3, style="F")
            y += 7 if len(lines) < 25 else 5.5
        if text_layer:
            if label:
                pdf.set_xy(10, 190)
                pdf.cell(0, 5, label)
            pdf.set_xy(10, 196)
            pdf.cell(0, 5, footer)

    roman = ["I", "II", "III", "IV", "V", "VI"]
    page([title, "National Guidelines for Management", "of Common Health Conditions"], None, "")
    chapters_seen: list[str] = []
    toc = ["Contents"]
    for s in sections:
        ch = _chapter(s.number)
        if ch not in chapters_seen:
            chapters_seen.append(ch)
            toc.append(f"{ch} {CHAPTERS.get(ch, 'Chapter ' + ch).upper()} " + "." * 20 + f"{starts[s.number]}")
        toc.append(f"{s.number} {s.title} " + "." * 30 + f"{starts[s.number]}")
    page(toc, roman[1], title)
    for extra in range(2, front_pages):
        page(["Introduction", "How to use these guidelines."], roman[extra], title)
    for n, (ch, lines) in enumerate(pages, start=1):
        page(lines, str(n), f"{title}CHAPTER {ch}: {CHAPTERS.get(ch, 'Chapter ' + ch)}")
    if encrypt:
        pdf.set_encryption(owner_password="owner", user_password="secret")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path


def edit_sections(sections: tuple[SectionSpec, ...], *, replace_lines: dict[str, tuple[str, ...]] | None = None,
                  remove: tuple[str, ...] = (), add_after: dict[str, SectionSpec] | None = None
                  ) -> tuple[SectionSpec, ...]:
    """A second edition: some sections' lines replaced, some removed, new ones inserted after others."""
    out = []
    for s in sections:
        if s.number in remove:
            continue
        if replace_lines and s.number in replace_lines:
            s = replace(s, lines=replace_lines[s.number])
        out.append(s)
        if add_after and s.number in add_after:
            out.append(add_after[s.number])
    return tuple(out)
