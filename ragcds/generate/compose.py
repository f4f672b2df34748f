"""Turn a Decision into what a person reads: the passages (excerpts of the resolved section first, each a
citable passage), the extractive prose answer, the verbatim treatment quote, and the texts for candidates,
refusal and out of scope. Only the book's own lines are shown; nothing here writes clinical content.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from ragcds import clinical
from ragcds.book import Block, Book
from ragcds.cautions import caution_for
from ragcds.ingest.chunk import Chunk
from ragcds.policy import OUT_OF_SCOPE_MESSAGE, Decision, Selection
from ragcds.retrieve import Hit, Retrieval
from ragcds.select import part_blocks
from ragcds.triage import Triage

BUDGET = 800  # characters of answer shown by default (--full shows the whole part)
PART_LABELS = {
    "features": "Clinical features", "investigations": "Investigations", "management": "Management",
    "referral": "Referral and danger signs", "prevention": "Prevention", "causes": "Causes",
    "differential": "Differential diagnosis", "complications": "Complications", "intro": "From the guideline",
    "related": "Also in this section",
}


def excerpt_passages(decision: Decision, retrieval: Retrieval, k: int, book: Book) -> list[Hit]:
    """The passages an answer cites: one excerpt per chunk that the selected blocks come from (its text is
    just those blocks, in book order), then the retrieved hits not already shown, up to k passages in all."""
    by_chunk: dict[str, list[Block]] = {}
    for sel in decision.selections:
        for b in sel.blocks:
            by_chunk.setdefault(b.chunk_id, []).append(b)
    chunks = {h.chunk.chunk_id: h.chunk for h in retrieval.hits}
    out: list[Hit] = []
    for cid, blocks in by_chunk.items():
        source = chunks.get(cid) or _chunk_of(book, decision, cid)
        if source is None:
            continue
        blocks = sorted(blocks, key=lambda b: b.order)
        pages = tuple(dict.fromkeys(b.pdf_page for b in blocks if b.pdf_page)) or source.pdf_pages
        printed = tuple(dict.fromkeys(b.printed_page for b in blocks if b.pdf_page)) or source.printed_pages
        text = "\n".join(b.text for b in blocks)
        out.append(Hit(len(out) + 1, replace(source, text=text, pdf_pages=pages, printed_pages=printed), 0.0))
    shown = set(by_chunk)
    for h in retrieval.hits:
        if len(out) >= max(k, len(by_chunk)):
            break
        if h.chunk.chunk_id not in shown:
            out.append(Hit(len(out) + 1, h.chunk, h.score, h.dense, h.bm25))
    return out


def _chunk_of(book: Book, decision: Decision, chunk_id: str) -> Chunk | None:
    section = book.section(decision.resolved[0].section) if decision.resolved else None
    if section is None:
        return None
    return next((c for c in section.chunks if c.chunk_id == chunk_id), None)


def passage_number(passages: Sequence[Hit], chunk_id: str) -> int:
    return next((h.rank for h in passages if h.chunk.chunk_id == chunk_id), 0)


def _block_lines(sel: Selection, passages: Sequence[Hit], quote: bool) -> list[str]:
    """Each block on its line with its passage number; the book's sub-heading ("Harmful and ineffective
    resuscitation practices") as a label where it changes, so a list is never read under the wrong heading."""
    out, subhead = [], ""
    cut = dict(sel.cut)
    for b in sel.blocks:
        if b.subhead and b.subhead != subhead:
            label = b.subhead.rstrip(": ")
            out.append(f"> {label}:" if quote else f"{label}:")
        subhead = b.subhead
        n = passage_number(passages, b.chunk_id)
        cite = f" [{n}]" if n else ""
        out.append(f"> {b.text}{cite}" if quote else f"- {b.text}{cite}")
        caution = caution_for(b.pdf_page, b.text)
        if caution:  # a reviewed doubt about the printed line, marked as ragcds's own (ragcds/data/cautions.tsv)
            out.append(f"{'>' if quote else ' '} \u26a0 ragcds caution, not the book's words: {caution}")
        left = cut.get(b.order)
        if left:  # a list the budget cut is never shown as if complete
            out.append(f"{'>' if quote else '-'} [\u2026 {left} more, p. {b.printed_page}]")  # ours, bracketed
    return out


def _pages(sel: Selection) -> str:
    printed = list(dict.fromkeys(b.printed_page for b in sel.blocks if b.printed_page))
    if not printed:
        return ""
    return f"p. {printed[0]}" if len(printed) == 1 else f"pp. {printed[0]}–{printed[-1]}"


def condition_line(decision: Decision, passages: Sequence[Hit]) -> str:
    """For a presentation: the condition and its section first — "Likely" only when the section is resolved
    with confidence, else "Possibly", with the other candidates named beside it."""
    if not decision.resolved:
        return ""
    primary = decision.resolved[0]
    n = next((h.rank for h in passages if h.chunk.section == primary.section), 0)
    lead = "Likely" if decision.confident and not decision.competing else "Possibly (not certain)"
    line = f"{lead}: {primary.citation()}" + (f" [{n}]" if n else "")
    others = [r.citation() for r in decision.resolved[1:]]
    if others:
        line += ". Also consider " + "; ".join(others)
    return line


def triage_line(t: Triage | None) -> str:
    if t is None:
        return ""
    if not t.because:
        return "Triage: routine (no danger sign of the guideline found in the question)"
    r = t.because[0]
    return f"Triage: {t.level.upper()} — {r.finding} ({short_citation(r.citation)})"


def short_citation(citation: str) -> str:
    """"§17.3.21 Check for General Danger Signs, p. 826: “lethargic …”" → "§17.3.21, p. 826": where to look, for
    the one-line triage (the reason's full citation and the book's words stay in `ask --json`). Chosen on dev
    against the full citation and the citation without its quote (key facts at 800 characters 0.453 → 0.459 /
    0.453), reported on dev2 (0.490 → 0.496 / 0.493)."""
    head = citation.split(": \u201c")[0]
    m = re.match(r"(§\S+).*?(, pp?\. .+)$", head)
    return m.group(1) + m.group(2) if m else head


def sections_text(decision: Decision, passages: Sequence[Hit]) -> str:
    """The selected parts of the resolved section, each under its name, pages and § (the quote marked)."""
    if not decision.resolved:
        return ""
    number = decision.resolved[0].section
    out = []
    for sel in decision.selections:
        quoted = decision.action == "quote" and sel.part == "management"
        label = PART_LABELS.get(sel.part, sel.part.title())
        if sel.part == "related" and len(decision.selections) == 1:  # the section's best lines are the answer
            label = PART_LABELS["intro"]
        head = f"{label}{', quoted' if quoted else ''} (§{number}, {_pages(sel)}):"
        out.append(head)
        out.extend(_block_lines(sel, passages, quoted))
        if sel.more:
            out.append(f"… more in §{number} (ragcds ask --full)")
    return "\n".join(out)


def extractive_prose(decision: Decision, passages: Sequence[Hit], t: Triage | None) -> str:
    """The extractive answer: triage and condition first (presentations), then the section's own lines."""
    lines = [triage_line(t)]
    if decision.ask.presentation:
        lines.append(condition_line(decision, passages))
    lines.append(sections_text(decision, passages))
    return "\n".join(x for x in lines if x)


def quote_text(decision: Decision, passages: Sequence[Hit]) -> str:
    """The verbatim treatment quote shown beside a model's answer (action quote)."""
    sel = [s for s in decision.selections if s.part == "management"]
    if decision.action != "quote" or not sel:
        return ""
    number = decision.resolved[0].section
    lines = [f"Treatment, quoted verbatim from the UCG 2023 (§{number}, {_pages(sel[0])}); "
             "ragcds does not write doses:"]
    lines.extend(_block_lines(sel[0], passages, True))
    if sel[0].more:
        lines.append(f"… more in §{number} (ragcds ask --full)")
    return "\n".join(lines)


CANDIDATE_FEATURES = 160  # characters of each candidate's own clinical features shown to tell them apart


def candidates_text(decision: Decision, book: Book | None = None) -> str:
    """No quote: the candidate sections, each with the start of its own clinical features (never a dose) so
    the health worker can tell which fits the patient."""
    where = []
    for r in decision.resolved:
        line = f"- {r.citation()}"
        blocks = distinguishing_blocks(book, r.section) if book is not None else []
        if blocks:
            line += f" — features (p. {blocks[0].printed_page}): " + "; ".join(b.text for b in blocks)
        where.append(line)
    return ("This asks for treatment, and ragcds cannot tell with confidence which section of the guideline it is "
            "about, so it quotes none. Read the treatment part of the section that fits your patient:\n"
            + "\n".join(where))


def distinguishing_blocks(book: Book, number: str, budget: int = CANDIDATE_FEATURES) -> list[Block]:
    """The first clinical-feature blocks of a section (its opening text when it has none), doses left out."""
    section = book.section(number)
    if section is None:
        return []
    out, left = [], budget
    for b in part_blocks(section, "features"):
        if clinical.has_dose(b.text):
            continue
        if len(b.text) > left:
            if out:
                break
            continue
        out.append(b)
        left -= len(b.text) + 2
    return out


def refusal_text(decision: Decision) -> str:
    where = "; ".join(r.citation() for r in decision.resolved) or "the relevant section of the UCG 2023"
    return ("ragcds does not give treatment, drug-choice or dosing advice (policy refuse). Follow the treatment "
            f"part of {where}.")


def out_of_scope_text(decision: Decision) -> str:
    unknown = ", ".join(decision.unknown_terms)
    tail = f" The guideline does not mention: {unknown}." if unknown else ""
    return OUT_OF_SCOPE_MESSAGE + tail


def packet_fields(decision: Decision, passages: list[Hit], t: Triage | None, text: str) -> dict:
    """Triage packet fields from the decision (extractive backend and ragcds' own answers)."""
    def cited(b) -> str:
        n = passage_number(passages, b.chunk_id)
        return f"{b.text} [{n}]" if n else b.text

    # an answer ragcds writes itself (candidates, refusal, out of scope) shows no line of the book in its
    # packet: its actions point to the sections, never to a treatment or a dose
    blocks = {s.part: s.blocks for s in decision.selections} if decision.action in ("answer", "quote") else {}
    actions = [cited(b) for b in blocks.get("management", ())][:4] or [
        cited(b) for p in blocks.values() for b in p][:4] or [
        f"Read the treatment part of {r.citation()}" for r in decision.resolved][:4]
    nexts = [cited(b) for p in ("investigations", "referral") for b in blocks.get(p, ())][:4]
    flags = [f"{r.finding} ({r.citation.split(':')[0]})" for r in (t.because if t else ())][:4]
    primary = decision.resolved[0] if decision.resolved else None
    n = next((h.rank for h in passages if primary and h.chunk.section == primary.section), 0)
    condition = (f"{primary.citation()}" + (f" [{n}]" if n else "")) if primary and decision.action != \
        "out_of_scope" else text[:110]
    return {
        "level": t.level if t else "routine",
        "condition": condition,
        "confidence": "high" if decision.confident else "medium" if decision.resolved else "low",
        "actions": actions or [f"See {primary.citation()}" if primary else "Consult another authoritative source"],
        "next_steps": nexts or [f"Read {primary.citation()}" if primary else "Not covered by the UCG 2023"],
        "red_flags": flags or ["No danger sign of the guideline found in the question"],
    }
