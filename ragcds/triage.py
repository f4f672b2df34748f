"""Triage grounded in the guideline: the level a presentation gets comes from what the UCG itself says about
its findings, each finding cited.

Three sources, highest level wins, and in doubt the higher level:

1. the guideline's emergency and danger-sign lists (``ragcds/data/triage_signs.tsv``: a finding, the level the
   book gives it, and the page and words where the book says so — checked against the UCG text by the tests),
   matched in the question unless negated ("no difficulty breathing");
2. measured vital signs in the question against the book's own thresholds (the same table: ``@sbp<90``);
3. the resolved section's own words: a line that says to refer urgently / immediately and shares findings with
   the question, a management that refers at once with no condition (emergency, when resolved with
   confidence), or a section that calls the condition a medical emergency;
4. the resolved section's treatment table: when a condition's level-of-care column lists no treatment below HC3
   (a health centre II cannot treat it, so the patient is referred), the presentation is at least urgent.

Without any of these the level is ``routine``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ragcds import clinical
from ragcds.book import Block, BookSection
from ragcds.files import package_data, table_rows
from ragcds.findings import conditions, met, negated, vitals
from ragcds.population import CHILD, LATE_PREGNANCY_WEEKS, Population, gestation_weeks, young_infant
from ragcds.select import lead_in

LEVELS = ("routine", "urgent", "emergency")  # ascending
WHO = ("any", "child", "infant", "adult", "pregnancy", "late-pregnancy")  # whom a danger sign is read for
SIGNS_FILE = "triage_signs.tsv"
# a line that refers at once (clinical.URGENT_REFERRAL_RE) or speaks of an emergency (not "emergency
# contraception", "for emergency use")
_EMERGENCY_WORD = re.compile(r"\bemergency\b(?! (contracept|use))", re.I)
_REFER_INSTRUCTION = re.compile(r"^(refer|admit)\b(?!.*\b(if|when|unless|in case)\b)(?! (to )?(a |the )?specialist)",
                                re.I)
# a management line that refers at once, whatever the case ("Apply an eye shield …, and refer the patient
# immediately to an Ophthalmologist"; "needs immediate referral"; "Refer urgently to HC4/Hospital", the book's word
# for its emergency referrals, added on dev2's obstructed labour, dev unchanged): the guideline treats the condition
# as an emergency. A line with a condition anywhere ("Refer immediately if GCS worsens") or leading into a list of
# them ("Refer patient to hospital immediately for") does not count.
_REFER_AT_ONCE = re.compile(r"\b(refer\w*|admit\w*|transfer\w*)\b(\s+\w+){0,5}?\s+(immediately|at once|urgently)\b|"
                            r"\bimmediate (referral|admission|transfer)\b", re.I)
_CONDITIONAL = re.compile(r"\b(if|when|unless|in case|where|whenever)\b|(\bfor|:)\s*$", re.I)
# the section's own opening calls the condition severe or fatal ("Severe acute bacterial infection with high
# fatality rate"): urgent when the section is resolved with confidence (chosen on dev2 d2-a/d2-b vignettes,
# reported on d2-c and dev; docs/policy.md)
_SEVERE_CONDITION = re.compile(r"\b(severe|fatal\w*|high (fatality|mortality)|serious|life[- ]threat\w*|rapidly)\b",
                               re.I)
# "(from mild) to life threatening" is a range, not this condition; a table's grade cell ("Severe Life-Threatening")
# says nothing of the condition either: a sentence of four words at least
_EMERGENCY_SECTION = re.compile(r"\b(medical emergency|threat to life|(?<!\bto )life[- ]threatening|"
                                r"surgical emergenc\w*|is an emergency|an emergency (and|that) requires?)\b", re.I)
_SENTENCE_WORDS = 4


# a line anywhere in the section saying the condition itself is an emergency: "It is a medical emergency and
# treatment should be instituted within an hour" (§20.1.8's management), "Eclampsia is a medical emergency" (its
# investigations), under its title's words ("PPH is an emergency" in Postpartum Haemorrhage (PPH)); a sub-type
# ("Angle-closure glaucoma is a medical emergency" under Glaucoma) only for a presentation of that sub-type
_IS_AN_EMERGENCY = re.compile(r"^(?P<subject>it|this|[\w\- ]{3,40}?) is (a |an )?(medical |surgical )?emergency\b",
                              re.I)
SUBTYPE_FINDINGS = 3  # findings a presentation shares with a sub-type's own features to be of that sub-type


def _calls_it_an_emergency(text: str, section: BookSection, question: frozenset[str] | set[str]) -> bool:
    m = _IS_AN_EMERGENCY.match(text.strip())
    if not m:
        return False
    subject = m.group("subject").lower()
    if subject in ("it", "this") or clinical.stems(subject) <= clinical.stems(section.title):
        return True
    own = [b for b in section.blocks if b.subhead.lower() == subject and b.kind != "heading"]
    return len(question & clinical.stems(" ".join(b.text for b in own)) - _GENERIC) >= SUBTYPE_FINDINGS


@dataclass(frozen=True)
class Sign:
    id: str
    level: str
    who: str  # any | child | infant | pregnancy
    finding: str  # regex, or "@vital<op>value" alternatives joined by |
    pdf_page: int
    quote: str

    @property
    def vitals(self) -> list[tuple[str, str, float]]:
        return conditions(self.finding)


@dataclass(frozen=True)
class Reason:
    finding: str  # the words of the question (or the measured value) that set the level
    level: str
    citation: str  # where the guideline says so
    source: str  # "danger-signs", "vital-signs", "section" or "level-of-care"

    def to_json(self) -> dict:
        return {"finding": self.finding, "level": self.level, "citation": self.citation, "source": self.source}


@dataclass(frozen=True)
class Triage:
    level: str
    because: tuple[Reason, ...]

    def to_json(self) -> dict:
        return {"level": self.level, "because": [r.to_json() for r in self.because]}


@lru_cache(maxsize=1)
def signs() -> tuple[Sign, ...]:
    return parse_signs(package_data(SIGNS_FILE))


def parse_signs(text: str) -> tuple[Sign, ...]:
    out = []
    for n, row in table_rows(text):
        if (row.get("level") not in LEVELS or row.get("who") not in WHO or not row.get("finding")
                or not row.get("quote")):
            raise ValueError(f"{SIGNS_FILE}: row {n} needs id, level (one of {LEVELS}), who (one of {WHO}), "
                             "finding, pdf_page, quote")
        out.append(Sign(row["id"], row["level"], row["who"], row["finding"], int(row["pdf_page"]), row["quote"]))
    return tuple(out)


# ------------------------------------------------------------------ the three sources


def _applies(who: str, population: Population, question: str) -> bool:
    """Whether a sign's population fits the question's patient: the chart for children of 2 months to 5 years
    is not read for a young infant, who has the young-infant chart's own signs."""
    if who == "any":
        return True
    if who == "infant":
        return young_infant(question)
    if who == "child":
        return (CHILD in population.groups or not population) and not young_infant(question)
    if who == "pregnancy":
        return "pregnancy" in population.groups
    if who == "late-pregnancy":  # the book's late pregnancy: from 28 weeks (§16.3.6, "after 28 weeks of pregnancy")
        weeks = gestation_weeks(question)
        return "pregnancy" in population.groups and weeks is not None and weeks >= LATE_PREGNANCY_WEEKS
    if who == "adult":
        return "adult" in population.groups and CHILD not in population.groups
    raise ValueError(f"{SIGNS_FILE}: unknown population {who!r} (one of {WHO})")


def _cite(sign: Sign, book_citation: dict[int, str]) -> str:
    return f"{book_citation.get(sign.pdf_page, f'PDF p. {sign.pdf_page}')}: \u201c{sign.quote}\u201d"


def from_signs(question: str, population: Population, page_citation: dict[int, str]) -> list[Reason]:
    out = []
    measured = vitals(question)
    for s in signs():
        if not _applies(s.who, population, question):
            continue
        if s.vitals:
            hits = met(s.vitals, measured)
            if hits:
                out.append(Reason(", ".join(hits), s.level, _cite(s, page_citation), "vital-signs"))
            continue
        for m in re.finditer(s.finding, question, re.I):
            if not negated(question, m.start()):
                out.append(Reason(m.group(0), s.level, _cite(s, page_citation), "danger-signs"))
                break
    return out


OPENING = 3  # lines of text that open a section (its definition)


def from_section(question: str, section: BookSection | None, confident: bool = False) -> list[Reason]:
    """The resolved section's own words: an urgent-referral line sharing findings with the question, a
    management that is referral (only when the section is resolved with confidence: a section the question
    may not be about says nothing of its urgency), or a condition the section calls an emergency (emergency
    when the section is resolved with confidence, else urgent)."""
    if section is None:
        return []
    q = clinical.stems(question)
    out: list[Reason] = []
    severe_said = False
    # the section's opening: its first lines of text (not a chart's classification cells further down)
    opening = {b.order for b in [b for b in section.blocks if b.part == "intro" and b.kind != "heading"][:OPENING]}
    for b in section.blocks:
        if b.kind == "heading" or clinical.DOCUMENT_POINTER_RE.search(b.text) or b.text.rstrip().endswith("?"):
            continue  # a chart's question ("Severe palmar pallor?") asks; it says nothing of this patient
        cite = f"§{section.number} {section.title}, p. {b.printed_page}"
        if (_EMERGENCY_SECTION.search(b.text) and len(b.text.split()) >= _SENTENCE_WORDS
                and (b.part == "intro" or _calls_it_an_emergency(b.text, section, q))):
            level = "emergency" if confident else "urgent"
            out.append(Reason(_said(section.title, b.text, _EMERGENCY_SECTION), level, cite, "section"))
        elif confident and b.order in opening and _SEVERE_CONDITION.search(b.text) and not severe_said:
            severe_said = True
            out.append(Reason(_said(section.title, b.text, _SEVERE_CONDITION), "urgent", cite, "section"))
        elif (confident and b.part in ("management", "referral") and _REFER_AT_ONCE.search(b.text)
              and not _CONDITIONAL.search(b.text) and not _depends_on_a_condition(section, b)):
            out.append(Reason(f"{section.title}: the guideline refers at once", "emergency",
                              f"{cite}: \u201c{_before_dose(b.text, 120)}\u201d", "section"))
        elif (confident and b.part in ("management", "referral") and _REFER_INSTRUCTION.match(b.text)
              and not _depends_on_a_condition(section, b)):
            out.append(Reason(f"{section.title}: the guideline's management is referral", "urgent",
                              f"{cite}: \u201c{_before_dose(b.text, 120)}\u201d", "section"))
        elif clinical.URGENT_REFERRAL_RE.search(b.text) or _EMERGENCY_WORD.search(b.text):
            shared = sorted(q & clinical.stems(b.text) - _GENERIC)
            if len(shared) >= 2:
                said = f"{cite}: \u201c{_before_dose(b.text, 120)}\u201d"
                out.append(Reason(", ".join(shared[:4]), "urgent", said, "section"))
    return out[:3]


def _depends_on_a_condition(section: BookSection, block: Block) -> bool:
    """A referral under a condition that leads into it ("If effusion persists >6 weeks:" / "Refer to ENT"): the
    condition, not the referral, is the management's rule."""
    lead = lead_in(section.blocks, block)
    return lead is not None and _CONDITIONAL.match(lead.text.strip()) is not None


# the lowest level of care at which a section's treatment table lists a treatment, from which a presentation
# is urgent (chosen on dev from HC3 / HC4 / H, reported on dev2; docs/policy.md)
URGENT_FROM_CARE = "HC3"


def from_care_level(section: BookSection | None) -> list[Reason]:
    """Urgent when a condition's treatment table starts at URGENT_FROM_CARE or higher: the book's level-of-care
    column says a health centre II cannot give the treatment. Only for a condition (a section with its own
    clinical features), not a procedure or a method offered at a higher level (vasectomy at HC4)."""
    if section is None or "features" not in section.part_names():
        return []
    found = [(clinical.LEVELS_OF_CARE.index(code), page) for c in section.chunks for line in c.text.splitlines()
             for code in clinical.levels_of_care(line) for page in c.printed_pages[:1]]
    if not found:
        return []
    lowest, page = min(found, key=lambda f: f[0])
    if lowest < clinical.LEVELS_OF_CARE.index(URGENT_FROM_CARE):
        return []
    code = clinical.LEVELS_OF_CARE[lowest]
    return [Reason(f"{section.title}: treated from {code} up (the book's level-of-care column)",
                   "urgent", f"§{section.number} {section.title}, p. {page}", "level-of-care")]


def _before_dose(text: str, n: int) -> str:
    """The start of a line, up to n characters and stopping before its first dose (marked …)."""
    m = clinical.DOSE_RE.search(text)
    head = text[:m.start()].rstrip() if m else text
    out = _words_upto(head, n)
    return out if head == text or out.endswith("\u2026") else out + "\u2026"


def _said(title: str, text: str, rx: re.Pattern[str]) -> str:
    """The section's words that set the level, quoted; a line holding a dose ("Doses >60 mg/kg can cause serious
    toxicity") is named by its word only, so a triage reason never shows a dose outside the cited passages."""
    if clinical.has_dose(text):
        m = rx.search(text)
        return f"{title}: the guideline calls it \u201c{m.group(0) if m else 'an emergency'}\u201d"
    return f"{title}: \u201c{_words_upto(text, 90)}\u201d"


def _words_upto(text: str, n: int) -> str:
    """The start of a text up to n characters, cut between words (marked …)."""
    if len(text) <= n:
        return text
    cut = text[:n + 1].rsplit(" ", 1)[0].rstrip(" ,;:")
    return cut + "\u2026"


_GENERIC = frozenset(clinical.stems(
    "refer referral urgent urgently immediately hospital patient child children adult health centre give treat "
    "treatment manage management sign signs year years old day days week weeks month months"))


def triage(question: str, population: Population, section: BookSection | None,
           page_citation: dict[int, str] | None = None, confident: bool = False) -> Triage:
    """The level of a presentation and the findings that set it (highest first)."""
    reasons = (from_signs(question, population, page_citation or {}) + from_section(question, section, confident)
               + from_care_level(section))
    if not reasons:
        return Triage("routine", ())
    reasons.sort(key=lambda r: -LEVELS.index(r.level))
    return Triage(reasons[0].level, tuple(reasons))
