"""What a question asks: which parts of a guideline section answer it, whether it asks for treatment (a drug,
a dose, a regimen, management), whether it presents a patient, and who the patient is.

The patterns were chosen on ../shared/eval/dev.jsonl and are reported on dev2.jsonl (docs/policy.md); they
read the question's own words, never a list of conditions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ragcds.clinical import stems
from ragcds.population import Population, question_population

# Part of a section → the words that ask for it. Order matters: it is the order parts are answered in.
ASK_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("diagnosis", re.compile(
        r"\b(what is (this|it|going on|happening|the (likely|probable|most likely) \w+)|likely (diagnosis|cause|"
        r"problem|condition)|what (should|would|do|might) (i|we|you) suspect|suspect|what (\w+ ){0,2}(is|fits) "
        r"(this|it)|which (\w+ ){0,2}(fits|is this)|classif\w*|what type|what kind|what complication|what condition"
        r"|diagnos(is|e) (and|is)|is it\b)", re.I)),
    ("features", re.compile(
        r"\b(signs?|symptoms?|features?|present(s|ation|ing)?\b|recogni[sz]\w*|look for|clinical picture|"
        r"what (findings|changes)|how (does|do) \w+ (look|appear))", re.I)),
    ("investigations", re.compile(
        r"\b(tests?|testing|investigat\w*|confirm\w*|diagnos(e|ed|ing)\b|how (is|are|do|should) \w+ (be )?"
        r"diagnosed|screen\w*|laborator\w*|x-?ray|blood (film|slide|smear|count)|criteria|results?)\b", re.I)),
    ("management", re.compile(
        r"\b(treat\w*|manag\w*|what (should|must|do|can|would) [\w ]{1,30}? do\b|what to do|"
        r"do (first|now|next)|give|given|prescrib\w*|medicines?|medications?|drugs?|antibiotics?|antivirals?|"
        r"antimalarials?|dos(e|es|age|ing)|regimens?|therap\w*|fluids?|handle|start|offer\w*|steps?|"
        r"advi[sc]e|counsel\w*|eye drops|injection|how much|how (often|long|fast)|first[- ]line|supportive care"
        r"|before (referral|transfer)|while arranging|rehydrat\w*|resuscitat\w*)\b", re.I)),
    ("referral", re.compile(
        r"\b(refer\w*|danger signs?|admi(t|ssion)\w*|sen[dt] \w+ (urgently )?to (hospital|a higher)|"
        r"how urgent|when (must|should) \w+ (be )?(sent|referred)|come back|return)\b", re.I)),
    ("prevention", re.compile(r"\b(prevent\w*|prophyla\w*|avoid (getting|catching)|protect\w*)\b", re.I)),
    ("causes", re.compile(r"\b(causes?d?|why|risk factors?|aetiolog\w*|etiolog\w*|predispos\w*)\b", re.I)),
    ("differential", re.compile(r"\b(differential|distinguish\w*|differ(s|ent)? from|tell apart)\b", re.I)),
    ("complications", re.compile(r"\bcomplications?\b", re.I)),
)
# Asking for a drug, a dose, a regimen or how to treat: answered by the section's own treatment text.
TREATMENT = re.compile(
    r"\b(treat\w*|manag\w*|prescrib\w*|medicines?|medications?|drugs?|antibiotics?|antivirals?|antimalarials?|"
    r"antifungals?|dos(e|es|age|ing)|regimens?|therap\w*|what (can|should|must) (i|we|you|be) (\w+ )?give|"
    r"(which|what) (\w+ ){0,2}(should|must|can|do) (i|we|you|he|she|they|the \w+) (\w+ )?(get|receive|be given|"
    r"take|use)|how much|eye drops|injection|first[- ]line|second[- ]line|vaccin\w* (schedule|dose)|"
    r"fluids? (should|to|do)|rehydrat\w*|what (should|must|do|can) [\w ]{1,30}? do\b|recommended|receive|be given|"
    r"how (often|long|many (tablets|doses|days))|schedule|offer(ed)?|supplements?|prophyla\w*|ORS|"
    r"what (is|are) (the )?(\w+ )?(options?|choices?)|correct(ed|ing|ion)?|"
    r"anti-?(emetic|pyretic|convulsant|histamine|helminthic)s?|anticoagula\w*|(local )?anaesthetics?|analgesics?|"
    r"how (is|are|should|do|does) ([\w-]+ ){1,3}(given|administered|started))\b",
    re.I,
)
# A patient described: an age, a person or a pronoun for one, in a statement before the question (pronouns and
# people added after dev2 showed two vignettes without an age; dev unchanged).
_PATIENT = re.compile(
    r"\b(\d{1,3}[- ](year|month|week|day|hour)s?[- ]old|men|women|people|persons?|he|she|they|his|her|"
    r"(man|woman|boy|girl|baby|babies|child|children|infant|"
    r"newborn|neonate|mother|father|grandmother|patient|farmer|teacher|driver|herdsman|student|worker|family|"
    r"members|husband|wife|son|daughter|toddler|adolescent|schoolgirl|schoolboy|primigravida)s?|para \d+)\b",
    re.I)
_SENTENCE = re.compile(r"[^.?!]+[.?!]?")
# a sentence that asks without a question mark: "A farmer asks me how often he should vaccinate ..."
_INDIRECT_ASK = re.compile(r"\b(asks?|asked|asking|wants? to know|would like to know|wonders?|enquires?|inquires?)"
                           r"(\s+\w+){0,2}?\s+(how|what|which|whether|if|when|why|where|who|about)\b", re.I)


def asked_sentences(question: str) -> list[str]:
    """The sentences that ask: those ending with '?' and indirect questions ("… asks how often …")."""
    return [s for s in _SENTENCE.findall(question) if s.strip().endswith("?") or _INDIRECT_ASK.search(s)]


# a question that asks for the first measures ("what initial management is needed before surgery", "what do I give
# him right now", "what should I do before referral"): a management part is then read in the book's order, which
# puts the first measures first, not by the words the question shares with its lines (select.select_part)
FIRST_STEPS = re.compile(r"\b(initial\w*|immediate(ly)?|first (steps?|measures?|things?|aid)|right now|at once|"
                         r"before (surgery|the operation|operating|referral|referring|transfer\w*|(she|he|they) "
                         r"(leaves?|goes|is sent|are sent)))\b", re.I)


def asks_first_steps(question: str) -> bool:
    """The sentences that ask (a vignette's story aside) ask for the first measures."""
    return FIRST_STEPS.search(" ".join(asked_sentences(question)) or question) is not None


def _describes_patient(question: str) -> bool:
    """A statement (not a question sentence) that mentions a patient: the shape of a clinical vignette."""
    statements = [s for s in _SENTENCE.findall(question) if s.strip() and not s.strip().endswith("?")]
    return any(_PATIENT.search(s) for s in statements) and len(question.split()) >= 14


# a test the question says came back negative ("The malaria RDT is negative", "Malaria tests are repeatedly
# negative"): the condition it tests for is not the likely one (a status such as "HIV-negative" is not a test)
_NEGATIVE_TEST = re.compile(
    r"\b(?P<what>[A-Za-z]{3,})\s+(?:rapid\s+)?(?:RDTs?|tests?|smears?|slides?|films?|serology)\b[^.;?!]{0,25}?"
    r"\b(?:came back |were |was |are |is )?(?:\w+ )?negative\b", re.I)


def negative_tests(question: str) -> frozenset[str]:
    """The stems of what tested negative in the question ("malaria" for "The malaria RDT is negative")."""
    return frozenset(s for m in _NEGATIVE_TEST.finditer(question) if m.group("what").lower() not in _NOT_A_CONDITION
                     for s in stems(m.group("what")))


# a test result a text states ("His malaria RDT is positive", "If mother tests negative:", "Management of
# RDT/Blood Smear Negative Patients")
_TEST_RESULT = re.compile(
    r"\b(?:m?RDTs?|tests?|tested|smears?|slides?|films?|serology)\b[^.;?!:]{0,25}?\b(?P<a>positive|negative)\b|"
    r"\b(?P<b>positive|negative)\s+(?:m?RDTs?|tests?|smears?|slides?|films?)\b", re.I)


def test_results(text: str) -> frozenset[str]:
    """The test results a text states: {"positive"}, {"negative"}, both, or none."""
    return frozenset((m.group("a") or m.group("b")).lower() for m in _TEST_RESULT.finditer(text))


# what a test is done on, or a word before "test" that names no condition
_NOT_A_CONDITION = frozenset("blood urine stool sputum skin rapid the his her their all both first last".split())


@dataclass(frozen=True)
class Ask:
    """What one question asks for."""

    parts: tuple[str, ...]  # section parts asked for, in answer order ("diagnosis" = name the condition)
    treatment: bool  # asks for a drug, a dose, a regimen or management
    presentation: bool  # describes a patient (a vignette)
    population: Population
    why: str  # the words that decided `treatment`

    @property
    def dose(self) -> bool:
        return "management" in self.parts and self.treatment


def analyse(question: str) -> Ask:
    """Read a question once: the parts it asks for, treatment, presentation and the patient's population."""
    presentation = _describes_patient(question)
    asked = " ".join(asked_sentences(question)) if presentation else ""
    what = asked or question  # a vignette's story says who the patient is; its question, what to answer
    parts = [name for name, rx in ASK_PATTERNS if rx.search(what)]
    m = TREATMENT.search(what)
    if presentation and "diagnosis" not in parts:
        parts.insert(0, "diagnosis")
    if not parts:
        parts = ["features", "management"] if presentation else ["intro"]
    return Ask(
        parts=tuple(parts),
        treatment=m is not None,
        presentation=presentation,
        population=question_population(question),
        why=m.group(0) if m else "",
    )
