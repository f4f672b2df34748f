"""The one home of clinical text knowledge: units, the dose grammar, the book's part headings, bullets,
level-of-care noise and stopwords. Ingest, policy, gates, metrics and the answer composer import it; the
tests check it against the UCG text itself.

Doses are compared as parsed tokens, never as substrings: "5 mg/kg" is not inside "15 mg/kg" here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# ------------------------------------------------------------------ units and doses

# Canonical unit ← spellings (case-insensitive unless the spelling is listed in CASE_SENSITIVE_UNITS).
UNIT_SPELLINGS: dict[str, tuple[str, ...]] = {
    "mcg": ("micrograms", "microgram", "mcg", "µg", "μg", "ug"),
    "mg": ("milligrams", "milligram", "mg"),
    "g": ("grams", "gram", "g", "gm"),
    "kg": ("kg",),
    "ml": ("millilitres", "millilitre", "milliliters", "milliliter", "mls", "ml"),
    "l": ("litres", "litre", "liters", "liter", "L"),
    "miu": ("million international units", "million units", "miu", "mu"),
    "iu": ("international units", "i.u.", "iu"),
    "unit": ("units", "unit"),
    "mmol": ("mmol",),
    "meq": ("meq",),
    "drop": ("drops", "drop"),
    "tab": ("tablets", "tablet", "tabs", "tab"),
    "cap": ("capsules", "capsule", "caps", "cap"),
    "puff": ("puffs", "puff"),
    "supp": ("suppositories", "suppository", "supp"),
    "sachet": ("sachets", "sachet"),
    "%": ("%",),
}
CASE_SENSITIVE_UNITS = frozenset({"L", "mu"})  # a lone "l" or "MU"-like word is too ambiguous otherwise
PER_SPELLINGS: dict[str, tuple[str, ...]] = {
    "kg": ("kg",),
    "day": ("24 hours", "24hrs", "24 hrs", "day", "d"),
    "dose": ("dose",),
    "hour": ("hours", "hour", "hrs", "hr", "h"),
    "min": ("minutes", "minute", "min"),
    "m2": ("m2", "m²"),
    "l": ("litre", "liter", "l"),
    "dl": ("dl",),
    "week": ("week", "wk"),
}
_UNIT_CANON = {s.lower(): u for u, spellings in UNIT_SPELLINGS.items() for s in spellings}
_PER_CANON = {s.lower(): p for p, spellings in PER_SPELLINGS.items() for s in spellings}


def _alternation(spellings: list[str]) -> str:
    out = []
    for s in sorted(spellings, key=len, reverse=True):
        esc = re.escape(s).replace(r"\ ", r"\s+")
        out.append(f"(?-i:{esc})" if s in CASE_SENSITIVE_UNITS else esc)
    return "|".join(out)


_NUMBER = r"(?:\d+(?:,\d{3})+(?!\d)|\d+(?:\.\d+)?|[½¼¾])"
_RANGE = rf"{_NUMBER}(?:\s*(?:-|–|—|to)\s*{_NUMBER}|\s*/\s*{_NUMBER})*"
_UNIT_RX = _alternation([s for spellings in UNIT_SPELLINGS.values() for s in spellings])
_PER_RX = _alternation([s for spellings in PER_SPELLINGS.values() for s in spellings])
DOSE_RE = re.compile(
    rf"(?<![\w.,/])(?P<num>{_RANGE})\s*(?P<unit>{_UNIT_RX})"
    rf"(?P<per>(?:\s*(?:/|\bper\b)\s*(?:{_PER_RX}))*)(?![\w])",
    re.IGNORECASE,
)
DOSE_PATTERN = "(?i)" + DOSE_RE.pattern  # the same grammar as a plain pattern string (settings, gates)
UNIT_WORD_RX = _UNIT_RX  # any spelling of a dose unit, as a regex alternation


@dataclass(frozen=True)
class Dose:
    """A parsed dose token: normalised number (or range / ratio), canonical unit and 'per' denominators."""

    number: str
    unit: str
    per: tuple[str, ...]
    text: str  # as written
    start: int
    end: int

    @property
    def key(self) -> tuple[str, str, tuple[str, ...]]:
        return (self.number, self.unit, self.per)

    def __str__(self) -> str:
        per = "".join(f"/{p}" for p in self.per)
        return f"{self.number} {self.unit}{per}"


def normalise_number(text: str) -> str:
    """'100,000' → '100000'; '20 – 30' and '20 to 30' → '20-30'; '20/120' kept as a ratio; '½' → '0.5'."""
    s = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", text)
    s = s.replace("½", "0.5").replace("¼", "0.25").replace("¾", "0.75")
    s = re.sub(r"\s*(?:-|–|—|\bto\b)\s*", "-", s)
    s = re.sub(r"\s*/\s*", "/", s)
    return re.sub(r"(?<![\d.])0+(?=\d)", "", s)


def parse_doses(text: str) -> list[Dose]:
    """Every dose token of a text (number or range + unit, with per-kg / per-day forms)."""
    out = []
    for m in DOSE_RE.finditer(text):
        unit = _UNIT_CANON.get(re.sub(r"\s+", " ", m.group("unit")).lower())
        if unit is None:  # pragma: no cover - the regex only matches listed spellings
            continue
        per = tuple(
            _PER_CANON[re.sub(r"\s+", " ", p).lower()]
            for p in re.findall(rf"(?:/|\bper\b)\s*({_PER_RX})", m.group("per"), re.IGNORECASE)
        )
        out.append(Dose(normalise_number(m.group("num")), unit, per, m.group(0), m.start(), m.end()))
    return out


def dose_keys(text: str) -> set[tuple[str, str, tuple[str, ...]]]:
    return {d.key for d in parse_doses(text)}


DOSE_REMOVED = "[dose removed: not in a cited UCG passage]"


def check_doses(text: str, sources: list[str], mark: str = DOSE_REMOVED) -> tuple[str, list[str]]:
    """Replace every dose of `text` whose exact (number, unit, per) token is in none of `sources` by `mark`.
    Returns (checked text, removed dose strings). The mark has no '<', '|', '"' or newline, so a checked
    XML or array packet still parses."""
    allowed: set[tuple[str, str, tuple[str, ...]]] = set()
    for s in sources:
        allowed |= dose_keys(s)
    removed: list[str] = []
    pieces, last = [], 0
    for d in parse_doses(text):
        if d.key in allowed:
            continue
        pieces.append(text[last : d.start])
        pieces.append(mark)
        removed.append(d.text)
        last = d.end
    pieces.append(text[last:])
    return "".join(pieces), removed


def has_dose(text: str) -> bool:
    return any(d.unit not in ("%",) for d in parse_doses(text))


# ------------------------------------------------------------------ the book's own part headings

# A condition section's recurring parts (../shared/notes/ucg-structure.md counts them). A stand-alone line
# equal to one of these (case-insensitive, trailing ':' ignored) opens that part.
PART_HEADINGS: dict[str, tuple[str, ...]] = {
    "features": ("clinical features", "clinical presentation", "signs and symptoms", "symptoms and signs",
                 "features", "clinical signs", "symptoms", "presentation"),
    "causes": ("causes", "cause", "causes/risk factors", "risk factors", "predisposing factors", "aetiology",
               "etiology", "causes and risk factors"),
    "differential": ("differential diagnosis", "differential diagnoses"),
    "investigations": ("investigations", "investigation", "diagnosis", "laboratory investigations"),
    "management": ("management", "treatment", "drug treatment", "general management", "general measures",
                   "medical management", "surgical management",
                   "specific management", "first aid", "supportive care", "treatment loc", "management loc"),
    "prevention": ("prevention", "prevention and control", "prophylaxis", "health education"),
    "complications": ("complications",),
    "referral": ("referral", "when to refer", "refer", "referral criteria", "danger signs"),
}
_HEADING_PART = {h: part for part, hs in PART_HEADINGS.items() for h in hs}
# "Management of severe malaria", "Investigations for malaria": a part heading naming its subject. Not a verb
# ("Refer for specialist assessment" is an instruction, a row of a treatment table)
_VERB_HEADINGS = frozenset({"refer"})
_PART_OF = re.compile(
    r"^(?P<head>" + "|".join(sorted((re.escape(h) for h in _HEADING_PART if h not in _VERB_HEADINGS), key=len,
                                    reverse=True))
    + r")\s+(?:of|for|in)\b[^.:;]{0,70}$", re.I)


def _bare(line: str) -> str:
    return re.sub(r"\s+", " ", line.strip().rstrip(":").strip()).lower()


def part_of_heading(line: str) -> str | None:
    """The part a stand-alone heading line opens ('management', 'features', ...), else None. Ordinary lines
    that merely begin with 'Treatment ...' are not headings, nor is a line in lower case: the tail of a wrapped
    line ("Fluoxetine 20 mg once a day for long term / management of the anxiety disorder")."""
    if line.strip()[:1].islower():
        return None
    bare = _bare(line)
    if bare in _HEADING_PART:
        return _HEADING_PART[bare]
    m = _PART_OF.match(bare)
    # no digit outside brackets: "Treatment of 2 …" is a sentence, "(≥ 14 to ≤ 28 weeks)" names the subject
    if m and not re.search(r"\d", re.sub(r"\([^)]*\)", "", bare)) and len(bare.split()) <= 10:
        return _HEADING_PART[m.group("head").lower()]
    if _QUALIFIED_MANAGEMENT.match(line.strip().rstrip(":")) and not line.strip().isupper():
        return "management"
    return None


# a heading that qualifies the management, as the UCG prints them ("General principles of management",
# "Pre-referral treatment", "Supportive treatment", "Pain Management"); not "Continue treatment" or "Refer for
# specialist management", which are instructions
_QUALIFIED_MANAGEMENT = re.compile(
    r"^(general principles of( medicine)?|principles of( general)?|pre-referral|supportive|symptomatic( and "
    r"supportive)?|adjunctive|non-medicine|non-drug|non-pharmacological|medicine|medicines-based|first line|"
    r"outpatient|inpatient|pain|case|initial|immediate|pre-operative|post-operative) (management|treatment)$", re.I)


_HEAD_FIRST_WORDS = frozenset(h.split()[0] for h in _HEADING_PART)


def heading_subject(line: str) -> str:
    """What a part heading names ("Management of pneumonia" → "pneumonia"); "" for a bare part heading."""
    first = line.strip().split(" ", 1)[0].lower()
    if first not in _HEAD_FIRST_WORDS or part_of_heading(line) is None:
        return ""
    m = _PART_OF.match(_bare(line))
    words = m.group(0)[len(m.group("head")):].split(None, 1) if m else []  # ["of", "pneumonia"]
    return words[1] if len(words) > 1 else ""


def is_management_heading(line: str) -> bool:
    return part_of_heading(line) == "management"


# ------------------------------------------------------------------ lines: bullets, noise, headings

# the book telling to refer at once ("refer the patient immediately to …", "Refer URGENTLY", "urgent referral")
URGENT_REFERRAL_RE = re.compile(r"\b(refer\w*(?: \w+){0,4} (urgently|immediately|at once)|urgent\w* refer\w*|"
                                r"immediate\w* refer\w*)", re.I)
# "Refer to section 16…", "Refer to NTLP manual", "(Refer to section on care of the mother and baby immediately":
# a pointer to another text, not a patient's referral
DOCUMENT_POINTER_RE = re.compile(r"\brefer to (the )?([\w/()-]+ ){0,7}?(manual|guidelines?|sections?|tables?|chapters?|"
                                 r"annex\w*|appendix|protocols?|policy|page)\b", re.I)
BULLET_RE = re.compile(r"^\s*([~•\-–—»¾*▪◦]|o|[frwy](?=\s+[A-Z]))\s+")
SENTENCE_END_RE = re.compile(r"[.:;!?)]\s*$")
# Level-of-care codes of the treatment tables (HC2 … NR) and the tables' header lines: shown to nobody,
# never altered in the index.
LOC_CODE = r"(?:HC\s?[2-4]|H|RR|NR|RRH|NRH|HC[2-4]/H)"
LOC_LINE_RE = re.compile(rf"^\s*(?:{LOC_CODE}(?:\s*[,/]?\s*{LOC_CODE})*|TREATMENT\s+LOC|MANAGEMENT\s+LOC"
                         r"|INSTRUCTIONS\s+LOC|LOC)\s*$")
LOC_TAIL_RE = re.compile(rf"\s+{LOC_CODE}\s*$")
# the levels of care, lowest first: health centre II, III, IV, hospital, regional and national referral hospital
LEVELS_OF_CARE = ("HC2", "HC3", "HC4", "H", "RR", "NR")
_LOC_WORD = re.compile(r"\b(HC\s?[2-4]|RRH|NRH|RR|NR|H)\b")


def levels_of_care(line: str) -> list[str]:
    """The level-of-care codes a treatment-table line carries (a bare "HC3 HC4" line or a row ending in one),
    normalised to LEVELS_OF_CARE; [] for any other line."""
    if LOC_LINE_RE.match(line):
        tail = line
    elif m := LOC_TAIL_RE.search(line):
        tail = m.group(0)
    else:
        return []
    codes = [c.replace(" ", "") for c in _LOC_WORD.findall(tail)]
    return [c[:-1] if c in ("RRH", "NRH") else c for c in codes]


def is_loc_noise(line: str) -> bool:
    """A bare level-of-care line (HC2, HC3 HC4, TREATMENT LOC): table furniture, not guidance."""
    return bool(LOC_LINE_RE.match(line))


def strip_bullet(line: str) -> str:
    """The line without its bullet; a doubled one ("- f Hyperthermia may occur") loses both."""
    return BULLET_RE.sub("", BULLET_RE.sub("", line, count=1), count=1).strip()


def is_bullet(line: str) -> bool:
    return bool(BULLET_RE.match(line))


# the PDF's bullet glyph read as "f" inside a line: two list items printed on one text line
# ("Give maintenance IV fluids 4 ml/kg/hour f Transfuse 10 ml/kg slowly")
_INLINE_BULLET = re.compile(r"(?<=[\w.,;:%)\]])\s+(?=f\s+[A-Z(])")


def split_inline_bullets(line: str) -> list[str]:
    """A line holding several list items (joined by the "f" bullet glyph), one item per string; the glyph stays
    at the head of each later item, where is_bullet / strip_bullet read it."""
    return _INLINE_BULLET.split(line)


_CONTINUES_AFTER = re.compile(r"(?:[-–,/(&+]|\b(?:and|or|of|the|with|for|to|in|a|an|by|on|at|than|if|as|from|per|"
                             r"nor|but|who|which|that|is|are|be|when|then|over|under|without|within))\s*$", re.I)


# a dose line ends with how long or how often ("for 5 days", "12 hourly", "stat"): a capitalised heading-like
# line after it opens the next part ("If bubo persisting, and partner was not treated", "For pyelonephritis",
# "Note"), it is not the dose line's tail
_REGIMEN_END = re.compile(r"(\d\s*(days?|weeks?|months?|hours?|doses?|years?)|\bstat|\bdaily|\bhourly|\bnocte|"
                          r"\bonce|\btwice a day|\btimes a day)\s*$", re.I)


# a line ending like this cannot end a list item: what follows, bullet or not, goes on with it
_OPEN_END = re.compile(r"\b(in|of|by|with|to|the|a|an|for|from|than|per|at|over)\s*$", re.I)
_CONDITION = re.compile(r"^(If|When|Unless|In case)\b")


def is_condition(line: str) -> bool:
    """A line that opens with a condition ("If still hypertensive:", "When oedema has subsided"): it starts
    what follows and never continues the line before it."""
    return bool(_CONDITION.match(line.strip()))


def open_ended(line: str) -> bool:
    """A line that stops mid-phrase ("… of", "… and", "… disease,"): the next line goes on with it."""
    return bool(_CONTINUES_AFTER.search(line))


def continues(prev: str, line: str, hard_break: bool = False) -> bool:
    """Is `line` a wrapped continuation of `prev` (same list item, sentence or table row)? Across a
    `hard_break` (a page break, the level-of-care code that ends a table row) only a plain wrap is: a line in
    lower case or after a connector ("… and", "… of")."""
    s = line.strip()
    if BULLET_RE.match(line):  # a bullet the PDF sets on a wrapped line: "… in 200 ml of Dextrose 5% in" / "- 60 …"
        rest = strip_bullet(line)
        return bool(rest) and (rest[0].islower() or rest[0].isdigit()) and bool(_OPEN_END.search(prev))
    if not prev.strip() or not s or _CAPTION.match(s) or _lead_in_line(s):
        return False
    if _ENDS_WITH_NUMBER.search(prev) and _STARTS_WITH_UNIT.match(s):  # "Benzylpenicillin 50,000" / "IU/Kg IM"
        return True
    if is_condition(s) or (s[0].isupper() and _REGIMEN_END.search(prev.strip()) and looks_like_heading(s)):
        return False
    if s[0].islower() or s[0] in "(),;:%" or _CONTINUES_AFTER.search(prev) or _REFER_SPLIT.search(prev + "\n" + s):
        return True
    return not hard_break and not SENTENCE_END_RE.search(prev) and len(prev.strip()) >= 45


# a dose whose number ends one line and whose unit opens the next is one dose, whatever breaks between them
_ENDS_WITH_NUMBER = re.compile(r"(?<![A-Za-z])\d[\d,.]*\s*$")
_STARTS_WITH_UNIT = re.compile(rf"^(?:{UNIT_WORD_RX})(?![A-Za-z])", re.I)


def _lead_in_line(s: str) -> bool:
    """A short capitalised line ending in a colon ("If outpatient (only adults):") opens what follows; it is not
    the tail of the line before it (a wrapped sentence goes on in lower case)."""
    return s.endswith(":") and s[:1].isupper() and len(s) < 60


# "REFER" at the end of a chart cell's line and "URGENTLY" on the next: one instruction, never two blocks
_REFER_SPLIT = re.compile(r"\brefer\s*\n(urgently|immediately)\b", re.I)
_CAPTION = re.compile(r"^(?:dosage|doses?|dosing|regimen)s?\s+(?:of|for)\b", re.I)


def looks_like_heading(line: str) -> bool:
    """A short title-like line with no sentence punctuation: a sub-heading or a table caption."""
    s = line.strip()
    if _CAPTION.match(s) and len(s) < 90 and not SENTENCE_END_RE.search(s):
        return True
    words = s.split()
    return (0 < len(words) <= 8 and s[0].isupper() and not BULLET_RE.match(s) and not SENTENCE_END_RE.search(s)
            and not has_dose(s) and len(s) < 70 and not s.endswith(","))


# ------------------------------------------------------------------ words

STOPWORDS = frozenset(
    """
a about above after again against all also am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have having
he her here hers him his how i if in into is it its itself just may might more most must no nor not now of
off on once only or other our out over own same shall she should so some such than that the their them then
there these they this those through to too under until up very was we were what when where which while who
whom why will with within would you your yes per via me my us get got
""".split()
)
_WORD_RE = re.compile(r"[a-z][a-z'\-]*[a-z]|\d+(?:\.\d+)?")


def words(text: str) -> list[str]:
    """Lower-cased word tokens (numbers kept whole)."""
    return _WORD_RE.findall(text.lower())


def content_words(text: str) -> list[str]:
    return [w for w in words(text) if w not in STOPWORDS and (len(w) >= 3 or w[0].isdigit())]


def stem(word: str) -> str:
    """A light suffix stripper shared by the matchers (plural, -ed, -ing, -ly, -ic/-ical)."""
    for suf in ("ational", "ically", "ation", "ness", "ings", "ical", "ies", "ing", "ed", "es", "ly", "al", "s"):
        if word.endswith(suf) and len(word) - len(suf) >= 4:
            return word[: -len(suf)]
    return word


def stems(text: str) -> set[str]:
    return {stem(w) for w in content_words(text) if not w[0].isdigit()}
