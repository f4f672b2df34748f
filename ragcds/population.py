"""Who a question is about and whom a section is written for: children, adults, pregnancy.

Many UCG conditions have separate sections by population ("Pneumonia in a Child of 2 months to 5 years" /
"Pneumonia in Children > 5 years and adults", "Malaria in Pregnancy", the IMCI charts of chapter 17 for children
under 5). A presentation states its patient ("a 45-year-old man", "a 7-week-old baby", "9 weeks pregnant");
retrieval demotes a section written only for another population. Pure functions, no clinical judgement beyond
the book's own population words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

CHILD, ADULT, PREGNANCY = "child", "adult", "pregnancy"
# the book's own age bands inside childhood: the newborn / young infant (birth up to 2 months: chapter 17's
# "Sick Newborn" and "Sick Young Infant Age Up To 2 Months", "Essential Care of the Newborn", "Neonatal ...") and
# the child from 2 months ("Sick Child Age 2 Months to 5 Years")
NEWBORN, OLDER_CHILD = "newborn", "older child"
NOT_PREGNANT = "not pregnant"  # the question says so ("a non-pregnant woman"): pregnancy sections do not fit

# an age in years: "a 58-year-old", "aged 58", and as a relative says it, "my mother is 58", "a boy of 4"
_AGE_YEARS = re.compile(
    r"\b(\d{1,3})[- ](?:years?|yrs?)[- ]old\b|\baged? (\d{1,3})(?: years)?\b|"
    r"\b(?:he|she|mother|father|wife|husband|brother|sister|grand(?:mother|father|son|daughter)|uncle|aunt|son|"
    r"daughter|boy|girl|man|woman) (?:is|of) (\d{1,3})(?: years)?\b(?!\s*(?:kg|%|/|mm|cm|°|weeks?|months?|days?))",
    re.I)
_AGE_YOUNG = re.compile(r"\b\d{1,2}[- ](?:days?|weeks?|months?)[- ]old\b|\bof \d{1,2} (?:days?|weeks?|months?)\b",
                        re.I)
_CHILD_WORDS = re.compile(r"\b(?:baby|babies|infant|newborn|neonate|toddler|child|son|daughter|boy|girl|"
                          r"grand(?:son|daughter))\b", re.I)
_ADULT_WORDS = re.compile(r"\b(?:man|men|woman|women|husbands?|wives|wife|mothers?|fathers?|adults?)\b", re.I)
_AGE_INFANT = re.compile(r"\b(\d{1,2})[- ](days?|weeks?)[- ]old\b|\b(newborn|neonate)s?\b", re.I)
YOUNG_INFANT_WEEKS = 8  # the IMCI young-infant charts: birth up to 2 months
_PREGNANT = re.compile(r"\b(?:pregnant|pregnancy|weeks? (?:of )?gestation|antenatal|in labou?r|delivered|delivery"
                       r"|postpartum|after (?:giving )?birth)\b", re.I)

_NOT_PREGNANT = re.compile(r"\b(?:not|non|never been)[- ](?:currently )?pregnant\b|\bno pregnancy\b", re.I)

_S_CHILD = re.compile(r"\b(?:child(?:ren)?|paediatric|infants?|neonat\w*|newborns?|bab(?:y|ies)|under[- ]?(?:5|five)"
                      r"|young infant|sick child)\b", re.I)
_S_ADULT = re.compile(r"\badults?\b", re.I)
_S_NEWBORN = re.compile(r"\b(?:newborns?|neonat\w*|young infants?|up to 2 months|first days of life)\b", re.I)
_S_OLDER_CHILD = re.compile(r"\b2 months to 5 years\b", re.I)
_AGE_UNIT = re.compile(r"\b(\d{1,3})[- ](days?|weeks?|months?|years?|yrs?)[- ]old\b|"
                       r"\b(?:boy|girl|baby|child|son|daughter|infant) of (\d{1,3}) (days?|weeks?|months?|years?)\b",
                       re.I)
_WEEKS = {"d": 1 / 7, "w": 1.0, "m": 4.35, "y": 52.0}
_S_PREGNANCY = re.compile(r"\b(?:pregnan\w*|obstetric\w*|antenatal|postpartum|postnatal|labou?r|puerper\w*)\b", re.I)


@dataclass(frozen=True)
class Population:
    groups: frozenset[str]

    def __bool__(self) -> bool:
        return bool(self.groups)


def question_population(question: str) -> Population:
    """The patient's groups stated in a question: an age in years (< 13 child, >= 18 adult), an age in days,
    weeks or months (child), person words (baby, boy / man, woman), pregnancy words."""
    groups: set[str] = set()
    ages = [int(a or b or c) for a, b, c in _AGE_YEARS.findall(question)]
    if ages:
        groups |= {CHILD} if ages[0] < 13 else {ADULT} if ages[0] >= 18 else set()
    elif _AGE_YOUNG.search(question) or _CHILD_WORDS.search(question):
        groups.add(CHILD)
    elif _ADULT_WORDS.search(question):
        groups.add(ADULT)
    if CHILD in groups:
        weeks = age_in_weeks(question)
        if young_infant(question):
            groups.add(NEWBORN)
        elif weeks is not None and weeks > YOUNG_INFANT_WEEKS:
            groups.add(OLDER_CHILD)
    if _NOT_PREGNANT.search(question):
        groups.add(NOT_PREGNANT)
    if _PREGNANT.search(_NOT_PREGNANT.sub(" ", question)):
        groups |= {PREGNANCY, ADULT} - ({CHILD} if CHILD in groups else set())
    return Population(frozenset(groups))


# words of pregnancy, labour, birth and breastfeeding: a question with none of them is not about an obstetric
# condition (a question with one may not state that the patient is pregnant: "a breastfeeding mother", "the first
# stage of labour", "7 weeks of amenorrhoea")
_OBSTETRIC = re.compile(r"\b(?:pregnan\w*|gestation\w*|antenatal|ANC|trimester|gravid\w*|primigravida|multigravida|"
                        r"para \d|labou?r\w*|childbirth|birth|deliver\w*|caesarean|c-section|postpartum|postnatal|"
                        r"puerper\w*|breast ?feed\w*|breasts?|lactat\w*|f(?:o)?et(?:al|us)|foetus|uter\w*|cervi\w*|"
                        r"placenta\w*|membranes|miscarr\w*|abortion|amenorrh\w*|missed (?:her )?periods?|obstetric\w*|"
                        r"midwi\w*|newborn|neonat\w*|episiotomy|eclampsia|pre-eclampsia)\b", re.I)


def obstetric(question: str) -> bool:
    """The question has a word of pregnancy, labour, birth or breastfeeding (a denied pregnancy aside). Without
    one, a section written for pregnancy ("Diabetes in Pregnancy") still fits (an adult woman may be pregnant),
    but policy.resolve ranks it after the sections written for anyone."""
    return _OBSTETRIC.search(_NOT_PREGNANT.sub(" ", question)) is not None


def for_pregnancy(section: Population) -> bool:
    """A section written for pregnancy, not for its newborn or child ("Urinary Tract Infections in Pregnancy")."""
    return PREGNANCY in section.groups and not section.groups & {CHILD, NEWBORN}


LATE_PREGNANCY_WEEKS = 28  # the book's antepartum haemorrhage: "Vaginal bleeding occurring after 28 weeks"
_GESTATION = re.compile(r"\b(\d{1,2})[- ]weeks?(?:'|’)? (?:pregnant|pregnancy|of (?:gestation|pregnancy|amenorrh\w*)|"
                        r"gestation|amenorrh\w*)|"
                        r"\b(?:at|GA|gestational age(?: of)?) (\d{1,2})[- ]?(?:weeks?|wks?)\b", re.I)


def gestation_weeks(question: str) -> int | None:
    """The weeks of pregnancy a question states ("34 weeks pregnant", "at 36 weeks", "GA 30 weeks")."""
    m = _GESTATION.search(question)
    return int(m.group(1) or m.group(2)) if m else None


def age_in_weeks(question: str) -> float | None:
    """The patient's age the question states ("a 9-month-old", "a 4-year-old girl"), in weeks; None without one."""
    m = _AGE_UNIT.search(question)
    if not m:
        return None
    number, unit = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
    return int(number) * _WEEKS[unit[0].lower()]


def young_infant(question: str) -> bool:
    """A patient under 2 months (the IMCI young-infant charts): an age in days, in weeks up to 8, a newborn."""
    m = _AGE_INFANT.search(question)
    if not m:
        return False
    return bool(m.group(3)) or m.group(2).lower().startswith("day") or int(m.group(1)) <= YOUNG_INFANT_WEEKS


def section_population(title: str, heading_path: Sequence[str] = ()) -> Population:
    """The groups a section names in its title or heading path; empty when it is for everyone."""
    text = re.sub(r"mother[- ]to[- ]child", " ", " ".join([*heading_path, title]), flags=re.I)
    groups = {g for g, rx in ((CHILD, _S_CHILD), (ADULT, _S_ADULT), (PREGNANCY, _S_PREGNANCY),
                              (NEWBORN, _S_NEWBORN), (OLDER_CHILD, _S_OLDER_CHILD)) if rx.search(text)}
    return Population(frozenset(groups))


def conflicts(question: Population, section: Population) -> bool:
    """True when the section is written only for groups the question's patient is not in: an adult or pregnancy
    section for a child, a child-only section for an adult or a pregnant woman, a pregnancy section for a woman the
    question says is not pregnant. (An adult woman is not otherwise assumed non-pregnant: policy.resolve only ranks
    pregnancy sections after the others when the question has no word of pregnancy.)"""
    if not question or not section:
        return False
    q, s = question.groups, section.groups
    if NOT_PREGNANT in q and for_pregnancy(section):
        return True
    if NEWBORN in s and OLDER_CHILD not in s and OLDER_CHILD in q:  # a newborn's section for a 9-month-old
        return True
    if OLDER_CHILD in s and NEWBORN not in s and NEWBORN in q:  # the 2 months-5 years chart for a newborn
        return True
    if CHILD in q and ADULT not in q:
        return CHILD not in s
    return s - {NEWBORN, OLDER_CHILD} == {CHILD}
