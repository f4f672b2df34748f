"""The one clinical lexicon: the dose grammar (number or range + unit, per-kg/per-day forms), the exact dose
check (parsed tokens, never substrings), part headings and level-of-care noise; checked against the UCG text."""

from __future__ import annotations

import re

import pytest

from ragcds import clinical
from tests.conftest import UCG_TEXT, need


@pytest.mark.parametrize("text, expected", [
    ("give 15 mg/kg then 250 mg", ["15 mg/kg", "250 mg"]),
    ("10 micrograms/kg", ["10 mcg/kg"]),
    ("150 µg and 150 mcg", ["150 mcg", "150 mcg"]),
    ("1 litre of ORS, 2 litres, 5 L of oxygen", ["1 l", "2 l", "5 l"]),
    ("20-30 ml/kg over 60 minutes", ["20-30 ml/kg"]),
    ("20 – 30 mL/kg", ["20-30 ml/kg"]),
    ("100,000 IU", ["100000 iu"]),
    ("benzathine penicillin 2.4 MIU", ["2.4 miu"]),
    ("artemether/lumefantrine 20/120 mg", ["20/120 mg"]),
    ("25 mg (½ tab)", ["25 mg", "0.5 tab"]),
    ("3 mg per kg per day", ["3 mg/kg/day"]),
    ("100 mg/kg/day", ["100 mg/kg/day"]),
    ("Dextrose 10%", ["10 %"]),
    ("2 puffs, 2 drops, 1 sachet, 1 suppository", ["2 puff", "2 drop", "1 sachet", "1 supp"]),
    ("insulin 10 units", ["10 unit"]),
    ("potassium 20 mmol", ["20 mmol"]),
    ("at 8 hours for 3 days", []),
])
def test_dose_grammar(text, expected):
    assert [str(d) for d in clinical.parse_doses(text)] == expected


@pytest.mark.parametrize("generated, passage", [
    ("5 mg/kg", "15 mg/kg every 8 hours, max 250 mg"),
    ("50 mg", "15 mg/kg every 8 hours, max 250 mg"),
    ("1 mg/kg", "10 micrograms/kg"),
    ("10 mcg", "10 micrograms/kg"),  # per-kg dropped: another dose
    ("1.5 litres", "1 litre"),
    ("2.4 mg", "2.4 mg/kg"),
    ("10000 IU", "100,000 IU"),
])
def test_dose_check_rejects_near_misses(generated, passage):
    text, removed = clinical.check_doses(f"Give {generated} now [1].", [passage])
    assert removed == [generated] and clinical.DOSE_REMOVED in text


def test_dose_check_keeps_exact_tokens_after_normalisation():
    text, removed = clinical.check_doses("Give 20–30 ml/kg, 100000 IU and 10 mcg/kg [1].",
                                         ["20-30 ml/kg over 1 hour; 100,000 IU; 10 micrograms/kg"])
    assert removed == [] and text.startswith("Give 20–30 ml/kg")


def test_part_headings_are_whole_lines_not_sentences():
    assert clinical.part_of_heading("Management") == "management"
    assert clinical.part_of_heading("TREATMENT LOC") == "management"
    assert clinical.part_of_heading("Treatment of uncomplicated malaria") == "management"
    assert clinical.part_of_heading("Clinical features:") == "features"
    assert clinical.part_of_heading("Investigations for Malaria") == "investigations"
    assert clinical.part_of_heading("Treatment should be started early in all patients.") is None
    assert clinical.part_of_heading("Treatment failure is defined as 2 consecutive counts") is None
    # "Refer for …" is an instruction (a treatment-table row), not the start of a referral part
    assert clinical.part_of_heading("Refer for specialist assessment") is None
    assert clinical.part_of_heading("Referral of patients") == "referral"
    # digits in brackets name the subject; a sentence with a number is not a heading
    assert clinical.part_of_heading("Medical management of IUFD (≥ 14 to ≤ 28 weeks)") == "management"
    assert clinical.part_of_heading("Treatment of 2 patients") is None
    # headings that qualify the management, as the book prints them; instructions are not headings
    for heading in ("Principles of general management", "Adjunctive treatment", "Pre-referral treatment",
                    "Non-medicine treatment", "Pain Management"):
        assert clinical.part_of_heading(heading) == "management", heading
    assert clinical.part_of_heading("Continue treatment") is None
    assert clinical.part_of_heading("Refer for specialist management") is None


def test_level_of_care_noise():
    assert all(clinical.is_loc_noise(x) for x in ("HC2", "HC3 HC4", "H", "RR", "TREATMENT LOC", "HC4/H"))
    assert not any(clinical.is_loc_noise(x) for x in ("HCG test", "Hb < 5 g/dl", "Refer to HC4"))


# ------------------------------------------------------------------ against the UCG text

_BROAD = re.compile(
    r"(?<![\w.,/])\d+(?:[.,]\d+)*\s?(?:mg|g|mcg|micrograms?|µg|ml|mL|litres?|IU|MIU|units?|mmol)(?![\w])")


@pytest.fixture(scope="module")
def ucg_lines() -> list[str]:
    return [line for line in need(UCG_TEXT).read_text(encoding="utf-8").splitlines() if re.search(r"\d", line)]


@pytest.mark.integration
def test_every_dose_string_of_the_ucg_is_recognised(ucg_lines):
    missed = []
    for line in ucg_lines:
        spans = [(d.start, d.end) for d in clinical.parse_doses(line)]
        for m in _BROAD.finditer(line):
            if not any(a <= m.start() < b for a, b in spans):
                missed.append(m.group(0))
    print("dose strings checked:", sum(len(_BROAD.findall(x)) for x in ucg_lines))
    assert missed == []


def _mutations(number: str) -> set[str]:
    digits = [i for i, ch in enumerate(number) if ch.isdigit()]
    out = {number[:i] + number[i + 1:] for i in digits if len(digits) > 1}
    out |= {number[:i] + "1" + number[i:] for i in digits}
    return {m for m in out if m and m[0].isdigit() and m != number}


@pytest.mark.integration
def test_one_digit_dropped_or_added_is_rejected(ucg_lines):
    checked, survived = 0, []
    for line in ucg_lines:
        keys = clinical.dose_keys(line)
        for d in clinical.parse_doses(line):
            m = re.match(r"[\d.,]+", d.text)
            if not m:  # ½, ¼: no digit to drop
                continue
            num = m.group(0)
            for mutated in _mutations(num):
                fake = mutated + d.text[len(num):]
                parsed = clinical.parse_doses(fake)
                if not parsed or parsed[0].key in keys:  # the line also states that dose: not a mutation
                    continue
                checked += 1
                if not clinical.check_doses(fake, [line])[1]:
                    survived.append((fake, line))
    print("mutated doses checked:", checked)
    assert checked > 1000 and survived == []


def test_list_items_printed_on_one_line_are_split_at_the_bullet_glyph():
    from ragcds.clinical import split_inline_bullets, strip_bullet

    line = "- Give maintenance IV fluids 4 ml/kg/hour f Transfuse 10 ml/kg slowly (over 3 hours) f Start refeeding"
    items = split_inline_bullets(line)
    assert [strip_bullet(x) for x in items] == [
        "Give maintenance IV fluids 4 ml/kg/hour", "Transfuse 10 ml/kg slowly (over 3 hours)", "Start refeeding"]
    assert "".join(items).replace(" ", "") == line.replace(" ", "")  # nothing lost, digits untouched
    assert split_inline_bullets("vitamin f is good") == ["vitamin f is good"]
    assert split_inline_bullets("- f Hyperthermia may occur") == ["- f Hyperthermia may occur"]
    assert strip_bullet("- f Hyperthermia may occur") == "Hyperthermia may occur"


def test_a_dose_split_between_its_number_and_its_unit_is_one_line_across_any_break():
    from ragcds.clinical import continues

    assert continues("- Benzylpenicillin 50,000", "IU/Kg IM", hard_break=True)  # PDF p. 907: not a heading
    assert continues("Gentamicin Age < 7 days 5", "mg/Kg", hard_break=True)
    assert not continues("Stage 2", "Mild disease", hard_break=True)
    assert not continues("Give 2", "Doses of vaccine", hard_break=True)


def test_heading_subject_names_what_a_part_heading_is_about():
    from ragcds.clinical import heading_subject

    assert heading_subject("Management of pneumonia") == "pneumonia"
    assert heading_subject("Management of stable angina:") == "stable angina"
    assert heading_subject("Treatment for adults") == "adults"
    for bare in ("Management", "Clinical features", "Treatment of", "Give amoxicillin for pneumonia"):
        assert heading_subject(bare) == "", bare
