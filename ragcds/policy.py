"""decide(question, retrieval, book) → Decision: what ragcds may say, about which section, and why.

Pure: it reads the one Retrieval of the question and the book (no second search). Four outcomes (docs/policy.md):

* ``out_of_scope`` — the question's own question sentence names something the guideline never mentions and
  no passage is close (best cosine below ``OUT_OF_SCOPE_COSINE``); the length of the question plays no part;
* ``candidates`` — a treatment question whose section is not resolved with confidence: the candidate sections
  are listed with their printed pages instead of quoting the wrong one;
* ``quote`` / ``refuse`` — a treatment question (drug, dose, regimen, management) with a resolved section: its
  own treatment text is quoted verbatim (policy ``quote``) or the user is sent to it (policy ``refuse``);
* ``answer`` — anything else: answered from the resolved section's own parts.

The resolved section comes from the section ranking, with the population the question states (child, adult,
pregnancy) matched against sections written for a population. Rules and thresholds were chosen on
../shared/eval/dev.jsonl and are reported on dev2.jsonl (docs/policy.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from ragcds.book import Block, Book, BookSection, related
from ragcds.clinical import stems
from ragcds.fusion import NamedSections
from ragcds.index.lexical import tokenize
from ragcds.population import conflicts, for_pregnancy, obstetric
from ragcds.question import Ask, analyse, asked_sentences, negative_tests
from ragcds.retrieve import Retrieval
from ragcds.select import extra_blocks, section_blocks, select_part
from ragcds.triage import from_signs

POLICIES: tuple[str, ...] = ("quote", "refuse")
Action = Literal["answer", "quote", "refuse", "candidates", "out_of_scope"]

# Out of scope: an unknown word in the question sentence AND no passage this close (chosen on dev.jsonl).
OUT_OF_SCOPE_COSINE = 0.55
UNKNOWN_MIN_LETTERS = 4
# a word naming a condition with the next one ("Kawasaki disease", "East Coast fever"): a question about a condition
# the book never names is out of scope however close its other words (the drugs, the child) bring its passages
_CONDITION_NOUN = r"(disease|syndrome|fever|disorder|virus|infection|sickness)\b"
# Confidence in the resolved section: the best passage belongs to it (or its parent/child) and at least this
# many of the top 10 passages do. 1 (the best passage itself) was chosen on dev.jsonl: 2 declined good
# resolutions without catching wrong ones (docs/policy.md has the figures on both sets).
CONFIDENT_SHARE = 1
CANDIDATES_LISTED = 3
NAMED_SHARE = 2
SUBSECTION_WITHIN = 3
OUT_OF_SCOPE_MESSAGE = (
    "This question is not covered by the Uganda Clinical Guidelines 2023, so ragcds does not answer it. "
    "Consult another authoritative source."
)


@dataclass(frozen=True)
class Resolved:
    """A section the answer is about, with why it was chosen."""

    section: str
    title: str
    printed_pages: tuple[str, ...]
    why: str

    def citation(self) -> str:
        pages = [p for p in self.printed_pages if p]
        span = "" if not pages else f", p. {pages[0]}" if len(pages) == 1 else f", pp. {pages[0]}–{pages[-1]}"
        return f"§{self.section} {self.title}{span}"

    def to_json(self) -> dict:
        return {"section": self.section, "title": self.title, "printed_pages": list(self.printed_pages),
                "why": self.why}


@dataclass(frozen=True)
class Selection:
    """The blocks of one part of the primary section chosen for the answer (book order)."""

    part: str
    blocks: tuple[Block, ...]
    more: bool  # the part has blocks that did not fit the budget
    # (order of the last shown item of a list, items of that list not shown): a cut list is marked where it is
    # cut, so "Contraindications" showing one item of seven is never read as complete
    cut: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class Decision:
    action: Action
    ask: Ask
    resolved: tuple[Resolved, ...] = ()  # primary first
    confident: bool = False
    competing: bool = False  # two unrelated sections are equally likely: both are shown
    selections: tuple[Selection, ...] = ()  # what the answer shows, per asked part
    why: str = ""
    unknown_terms: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def quote(self) -> tuple[Block, ...]:
        """The verbatim treatment text (action quote): the management part's selected blocks."""
        if self.action != "quote":
            return ()
        return tuple(b for s in self.selections if s.part == "management" for b in s.blocks)


def question_sentences(question: str) -> str:
    """The sentences that ask (question.asked_sentences); the whole text for a search-box query."""
    asked = asked_sentences(question)
    return " ".join(asked) if asked else question


def unknown_terms(question: str, vocabulary: object, lexicon: object | None = None) -> list[str]:
    """Words of the question sentence that the guideline never uses (not in the BM25 vocabulary), lay words
    the lexicon maps to clinical ones excepted."""
    lay = set()
    if lexicon is not None:
        for phrase, _ in lexicon.matches(question):
            lay |= set(tokenize(phrase))
    asked = question_sentences(question)
    words = {}  # stem → the word as the question spells it ("entitl" → "entitled")
    for w in re.findall(r"[A-Za-z]+", asked):
        for t in tokenize(w):
            words.setdefault(t, w.lower())
    return [words.get(t, t) for t in dict.fromkeys(tokenize(asked))
            if t.isalpha() and len(t) >= UNKNOWN_MIN_LETTERS and t not in vocabulary and t not in lay]


def out_of_scope(question: str, retrieval: Retrieval, vocabulary: object, lexicon: object | None = None
                 ) -> tuple[bool, str, list[str]]:
    unknown = unknown_terms(question, vocabulary, lexicon)
    named = [w for w in unknown if re.search(rf"\b{re.escape(w)}('s)?\s+{_CONDITION_NOUN}", question, re.I)]
    if named:  # the condition asked about is one the book never names ("Kawasaki disease"), however close
        return True, f"a condition the guideline never names: {', '.join(named)} " \
            f"(best passage cosine {retrieval.top_dense:.3f})", unknown
    outside = bool(unknown) and retrieval.top_dense < OUT_OF_SCOPE_COSINE
    why = (f"words the guideline never uses: {', '.join(unknown) or 'none'}; best passage cosine "
           f"{retrieval.top_dense:.3f} (threshold {OUT_OF_SCOPE_COSINE})")
    return outside, why, unknown


def _resolved(book: Book, number: str, why: str) -> Resolved:
    s = book.section(number)
    return Resolved(number, s.title if s else "", s.printed_pages if s else (), why)


def resolve(ask: Ask, retrieval: Retrieval, book: Book) -> tuple[list[Resolved], bool, bool]:
    """(resolved sections primary first, confident, competing) from the section ranking of one retrieval."""
    ranked = [s for s in retrieval.sections if s.section and s.section in book]
    if not ranked:
        return [], False, False
    fitting = [s for s in ranked if not conflicts(ask.population, book.section(s.section).population)]
    if not obstetric(retrieval.question):  # a pregnancy section after the others, the question read once
        fitting.sort(key=lambda s: for_pregnancy(book.section(s.section).population))
    tested = negative_tests(retrieval.question) if ask.presentation else frozenset()
    fitting = [s for s in fitting if not tested & stems(s.title)] or fitting
    primary = (fitting or ranked)[0]
    why = f"section rank {ranked.index(primary) + 1}"
    if primary is not ranked[0]:
        why += f"; §{ranked[0].section} is written for another population than the question's patient, or " \
               "its condition tested negative"
    hits = [h for h in retrieval.hits  # passages written for another population do not vote
            if h.chunk.section not in book or not conflicts(ask.population, book.section(h.chunk.section).population)]
    top_chunk = hits[0].chunk.section if hits else ""
    narrower = next((s for s in fitting[:SUBSECTION_WITHIN] if s.section == top_chunk), None)
    if narrower is not None and top_chunk.startswith(primary.section + "."):
        why += f"; its sub-section §{top_chunk} (rank {ranked.index(narrower) + 1}) holds the best passage"
        primary = narrower
    agree = related(top_chunk, primary.section)
    share = sum(related(h.chunk.section, primary.section) for h in hits[:10])
    named = share >= NAMED_SHARE and bool(NamedSections([primary.title]).named(retrieval.question).any())
    confident = (agree or named) and share >= CONFIDENT_SHARE
    why += f"; {share} of the top 10 passages are from it" + ("" if agree else "; the best passage is not")
    if named:
        why += "; the question names it"
        agree = True
    out = [_resolved(book, primary.section, why)]
    competing = False
    if not agree and top_chunk in book:
        competing = True
        out.append(_resolved(book, top_chunk, "the best single passage is from it"))
    if not confident:
        for s in fitting[1:]:
            if len(out) >= CANDIDATES_LISTED:
                break
            if not any(related(s.section, r.section) for r in out):
                out.append(_resolved(book, s.section, f"section rank {ranked.index(s) + 1}"))
    return out, confident, competing


def decide(question: str, retrieval: Retrieval, book: Book, vocabulary: object, *, policy: str = "quote",
           lexicon: object | None = None, budget: int = 800, full: bool = False) -> Decision:
    """What to answer, from which section, and why (pure: no search, no model)."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; choose one of {', '.join(POLICIES)}")
    ask = analyse(question)
    outside, scope_why, unknown = out_of_scope(question, retrieval, vocabulary, lexicon)
    if outside or not retrieval.hits:
        return Decision("out_of_scope", ask, why=f"out of scope: {scope_why}", unknown_terms=tuple(unknown))
    resolved, confident, competing = resolve(ask, retrieval, book)
    if not resolved:
        return Decision("out_of_scope", ask, why="no guideline section matches the question")
    selections = select_sections(question, ask, book, resolved[0].section, budget, full)
    base = dict(ask=ask, resolved=tuple(resolved), confident=confident, competing=competing,
                selections=selections, unknown_terms=tuple(unknown))
    if ask.treatment and (not confident or competing):
        return Decision("candidates", **base, why="treatment question; the section is not resolved with "
                        "confidence, so candidate sections are listed instead of a quote")
    if ask.treatment:
        action: Action = "refuse" if policy == "refuse" else "quote"
        return Decision(action, **base, why=f"treatment question ({ask.why!r}): the section's own treatment "
                        "text " + ("is quoted verbatim" if action == "quote" else "is not shown (policy refuse)"))
    return Decision("answer", **base, why="answered from the resolved section's own text")


PART_HEADER = 40  # characters a part's header line takes ("Management (§1.2.3, pp. 49–50):")


def select_sections(question: str, ask: Ask, book: Book, number: str, budget: int, full: bool
                    ) -> tuple[Selection, ...]:
    """Blocks of the primary section for each part the question asks, sharing the character budget; what is
    left goes to the section's other blocks that match the question best (a section without the part asked
    for still answers from its own text)."""
    section = book.section(number)
    if section is None:
        return ()
    parts = [p for p in ask.parts if p != "diagnosis"] or ["intro"]
    if ask.treatment and "management" not in parts:
        parts.append("management")
    severe = ask.presentation and any(r.level == "emergency" for r in from_signs(question, ask.population, {}))
    out: list[Selection] = []
    shown: set[int] = set()  # blocks a part already shows: never repeated by another
    left = budget
    for i, part in enumerate(parts):
        share = left if full else max(left // (len(parts) - i) - PART_HEADER, 0)
        blocks, more = select_part(section, part, question, None if full else share, frozenset(shown), severe)
        if blocks:
            out.append(Selection(part, tuple(blocks), more, cut_lists(section, blocks) if more else ()))
            shown.update(b.order for b in blocks)
            left -= PART_HEADER + sum(len(b.text) + 8 for b in blocks)
    if not full and left > 120:
        extra = extra_blocks(section, question, shown, left - PART_HEADER)
        if extra:
            out.append(Selection("related", tuple(extra), False, cut_lists(section, extra)))
    elif full and not out:  # --full on a section without the parts asked for: the whole section
        whole = section_blocks(section)
        if whole:
            out.append(Selection("related", tuple(whole), False))
    return tuple(out)


def cut_lists(section: BookSection, shown: Sequence[Block]) -> tuple[tuple[int, int], ...]:
    """For each list (the items of one part under one sub-heading) that shows some of its items but not all:
    (its last shown item, distinct items left)."""
    taken = {b.order for b in shown}
    seen = {b.text for b in shown}
    out = []
    for key in dict.fromkeys((b.part, b.subhead) for b in shown if b.kind == "item"):
        own = [b for b in section.blocks if b.kind == "item" and len(b.text) > 2 and (b.part, b.subhead) == key]
        left = len({b.text for b in own} - seen)
        if left:
            out.append((max(b.order for b in own if b.order in taken), left))
    return tuple(out)


def widened(decision: Decision, question: str, book: Book, budget: int) -> Decision:
    """The same decision with the section's parts selected for a larger budget: what a model reads (the
    display keeps the decision's own selections)."""
    if not decision.resolved or decision.action in ("out_of_scope", "candidates", "refuse"):
        return decision
    selections = select_sections(question, decision.ask, book, decision.resolved[0].section, budget, False)
    return replace(decision, selections=selections)


def candidate_lines(resolved: Sequence[Resolved]) -> list[str]:
    return [r.citation() for r in resolved]
