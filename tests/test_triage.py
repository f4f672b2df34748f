"""Triage grounded in the guideline: danger signs from the book's own lists (each quote checked on its page),
vital signs against the book's thresholds, negation, the resolved section's own referral words."""

from __future__ import annotations

import re

import pytest

from ragcds.book import Book
from ragcds.findings import negated, vitals
from ragcds.ingest.chunk import Chunk
from ragcds.population import question_population
from ragcds.triage import parse_signs, signs, triage
from tests.conftest import UCG_TEXT, need


def level(question: str, section=None, confident: bool = False) -> str:
    return triage(question, question_population(question), section, {}, confident).level


def test_danger_signs_set_the_level_with_their_citation():
    t = triage("A 2-year-old had a fit this morning and is now hard to wake.", question_population("a 2-year-old"),
               None, {892: "§17.3.21 Check for General Danger Signs, p. 826"})
    assert t.level == "emergency" and t.because[0].finding in ("a fit", "hard to wake")
    assert any("§17.3.21" in r.citation or "PDF p." in r.citation for r in t.because)
    assert level("A 30-year-old woman has itchy weals on her arms.") == "routine"
    # the fracture section's own criterion: "if no sensation/pulse, refer as an emergency" (PDF p. 110)
    fell = "A man fell from a tree; his leg is deformed, his foot is pale and I cannot feel any pulse in the foot."
    assert level(fell) == "emergency"
    assert level("A man fell from a tree; his leg is deformed, the pulse in the foot is strong.") == "routine"


def test_fit_the_verb_and_fit_the_adjective_are_not_convulsions():
    assert level("A 17-year-old swallowed tablets. Which overdose fits this picture?") == "routine"
    assert level("A previously fit and well 30-year-old man has a cough.") == "routine"
    assert level("A 2-year-old had a fit this morning.") == "emergency"
    assert level("His relatives say the fits began 40 minutes ago.") == "emergency"
    assert level("A child has coughing fits and fits of coughing that end in a whoop.") == "routine"


def test_airway_signs_in_a_health_workers_words():
    # the book's "Upper airway obstruction as shown by: flaring of the nostrils, recession ... below the ribs"
    # (p. 1031) and chest in-drawing as a mother or a nurse describes it
    assert level("A 10-month-old choked on groundnuts and keeps coughing.") == "emergency"
    assert level("A 10-month-old has a cough; his nostrils are flaring.") == "emergency"
    assert level("A 2-year-old coughs; the skin below his ribs sucks in with each breath.") == "emergency"
    assert level("A 2-year-old coughs; his lower chest pulls in when he breathes.") == "emergency"
    assert level("A 2-year-old coughs; no flaring of the nostrils, his chest does not pull in.") == "routine"


def test_any_bleeding_in_late_pregnancy_is_an_emergency():
    # the book: "Any bleeding in late pregnancy needs immediate referral" (§16.3.6, from 28 weeks)
    from ragcds.population import gestation_weeks

    assert gestation_weeks("a woman 34 weeks pregnant") == 34 and gestation_weeks("seen at 36 weeks") == 36
    assert level("A woman who is 34 weeks pregnant has fresh red blood flowing from the birth canal.") == "emergency"
    assert level("A pregnant woman of 25 years has light vaginal bleeding at 30 weeks.") == "emergency"
    assert level("A woman 20 weeks pregnant has light vaginal bleeding.") == "routine"
    assert level("A woman at 36 weeks of pregnancy has headache; no vaginal bleeding.") == "routine"


def test_negated_findings_do_not_count():
    q = "A woman has itchy weals. She has no lip swelling and no difficulty breathing, and she is not confused."
    assert level(q) == "routine"
    assert negated("he is not breathing fast", 10) and not negated("he is breathing fast", 6)
    assert level("The baby is not breathing and floppy.") == "emergency"
    # "not breathing fast" is a finding about the breathing rate, not apnoea
    assert level("A 5-year-old coughs in fits of whoops; he is alert and is not breathing fast.") != "emergency"


def test_haemorrhages_that_are_a_sign_not_a_bleed_set_no_level():
    assert level("A 24-year-old has fever, a new murmur and splinter haemorrhages under her nails.") == "routine"
    assert level("A man has a subconjunctival haemorrhage after coughing.") == "routine"
    assert level("A woman has a postpartum haemorrhage.") == "emergency"


def test_child_only_danger_signs_are_not_applied_to_adults():
    assert level("A 9-week pregnant woman of 20 years is vomiting everything.") != "emergency"
    assert level("A 3-year-old boy is vomiting everything.") == "emergency"
    # in an adult, the book's "Severe vomiting: Vomiting everything, not able to drink" (p. 233) is urgent
    assert level("A 28-year-old woman has flank pain; she is vomiting and cannot keep fluids down.") == "urgent"
    assert level("A 3-year-old boy cannot keep anything down.") == "emergency"


def test_a_young_infant_is_read_against_the_young_infant_chart():
    q = "A 6-day-old baby has poor feeding, lethargy and a temperature of 38.6°C."
    t = triage(q, question_population(q), None, {874: "§17.2.1 Check for Very Severe Disease, p. 808",
                                                  892: "§17.3 Sick Child Age 2 Months to 5 Years, p. 826"})
    assert t.level == "emergency" and all("§17.2.1" in r.citation for r in t.because)
    assert level("A 5-week-old baby is breathing 70 times a minute.") == "emergency"
    assert level("A 2-year-old is breathing 70 times a minute.") == "routine"  # the infant threshold only
    older = "A 2-year-old boy is lethargic."
    assert "PDF p. 892" in triage(older, question_population(older), None, {}).because[0].citation
    # "three men": adults, to whom the children's chart is not applied
    assert level("Three men drank spirit; one is drowsy.") == "routine"


def test_vital_signs_against_the_books_thresholds():
    assert vitals("BP 85/55 mmHg, pulse 126, oxygen saturation 86%, breathing 34 times a minute") == {
        "sbp": 85.0, "dbp": 55.0, "pulse": 126.0, "spo2": 86.0, "rr": 34.0}
    assert level("A 45-year-old man with cough, BP 120/80 mmHg and oxygen saturation 86%.") == "emergency"
    assert level("A 52-year-old man with headache, BP 220/130 mmHg.") == "emergency"
    assert level("A 30-year-old man, pulse 108/min, BP 120/78, thirsty.") == "urgent"
    assert level("A 30-year-old man, pulse 80, BP 120/78, thirsty.") == "routine"


def test_the_resolved_sections_own_words():
    chunks = [Chunk("e1", "6.1.4", "Peritonitis", ("6",), "", (200,), ("150",),
                    "A surgical emergency needing urgent action.\nManagement\n- Refer to hospital for surgery")]
    s = Book(chunks).section("6.1.4")
    assert level("A 30-year-old man with abdominal pain.", s, confident=True) == "emergency"
    assert level("A 30-year-old man with abdominal pain.", s, confident=False) == "urgent"


def test_a_management_that_is_referral_counts_only_when_the_section_is_resolved_with_confidence():
    glue = Book([Chunk("g1", "21.1.5", "Glue Ear", ("21",), "", (990,), ("941",),
                       "Fluid in the middle ear.\nManagement\n- Refer to an ENT specialist for grommets")])
    q = "A 5-year-old does not respond in class; both eardrums look dull."
    assert level(q, glue.section("21.1.5"), confident=True) == "urgent"
    assert level(q, glue.section("21.1.5"), confident=False) == "routine"
    # "Refer urgently", with no condition, is the book's emergency referral
    labour = Book([Chunk("o1", "16.4.3", "Obstructed Labour", ("16",), "", (808,), ("743",),
                         "The presenting part cannot descend.\nManagement\n- Refer urgently to HC4/Hospital")])
    q = "A 19-year-old in her first labour has pushed for many hours; the head has not come down."
    assert level(q, labour.section("16.4.3"), confident=True) == "emergency"


def test_a_referral_under_a_condition_or_to_another_text_is_not_the_management():
    def glue(management: str):
        return Book([Chunk("g1", "21.1.5", "Glue Ear", ("21",), "", (990,), ("941",),
                           f"Fluid in the middle ear.\nManagement\n{management}")]).section("21.1.5")
    q = "A 5-year-old does not respond in class; both eardrums look dull."
    assert level(q, glue("If effusion persists >6 weeks:\n- Refer to an ENT specialist"), True) == "routine"
    assert level(q, glue("Give the drops\n- Refer to an ENT specialist"), True) == "urgent"
    assert level(q, glue("Give the drops\n- Refer to specialist for disease modifying drugs"), True) == "routine"
    pointer = "- Refer to the National Tuberculosis and Leprosy Programme (NTLP) manual 2016 for more details"
    assert level(q, glue(pointer), True) == "routine"
    assert level(q, glue("- (Refer to section on care of the mother and baby immediately)"), True) == "routine"


def test_a_range_up_to_life_threatening_or_a_grade_cell_does_not_make_the_condition_an_emergency():
    def arv(opening: str):
        return Book([Chunk("a1", "3.1.7", "ARV Toxicity", ("3",), "", (284,), ("218",),
                           f"{opening}\nManagement\n- Substitute the offending drug")]).section("3.1.7")
    q = "A 45-year-old woman on AZT is breathless on walking; her haemoglobin is 6.5 g/dl."
    assert level(q, arv("ARV drugs can cause a wide range of toxicities, from mild to life threatening."), True) \
        != "emergency"
    assert level(q, arv("Severe Life-Threatening"), True) != "emergency"
    assert level(q, arv("Lactic acidosis is a life-threatening reaction to ARVs."), True) == "emergency"


def test_severe_counts_in_the_sections_opening_not_in_a_chart_cell_further_down():
    rows = "\n".join(f"- Sign {i}" for i in range(6))
    chart = Book([Chunk("c1", "17.2.3", "Check for Diarrhoea", ("17",), "", (811,), ("812",),
                        f"Ask about diarrhoea in young infants.\nLook at the infant.\n{rows}\n"
                        "Movement only when stimulated is a sign of Severe disease in this chart row\n"
                        "Management\n- Give ORS")]).section("17.2.3")
    q = "A 7-week-old has had watery stools for 3 days; eyes not sunken."
    assert level(q, chart, confident=True) == "routine"
    # the young-infant chart's own row: "Diarrhoea lasting 14 days or more … Refer to hospital" (PDF p. 880)
    assert level("A 7-week-old has had watery stools for 16 days; eyes not sunken.") == "urgent"
    assert level("A 3-year-old has had diarrhoea for 16 days; eyes not sunken.") == "routine"


def test_a_management_that_refers_at_once_makes_an_emergency_only_without_a_condition():
    def eye(line: str) -> Book:
        return Book([Chunk("p2", "20.3.2.2", "Penetrating Eye Injuries", ("20",), "", (960,), ("943",),
                           f"Injury by a sharp object.\nManagement\n- {line}")])
    q = "A boy was poked in the eye with a stick; tissue pokes out of a cut in the cornea."
    at_once = eye("Apply an eye shield, give a pain reliever and refer the patient immediately to an Ophthalmologist")
    t = triage(q, question_population(q), at_once.section("20.3.2.2"), {}, True)
    assert t.level == "emergency" and "refers at once" in t.because[0].finding
    assert "refer the patient immediately" in t.because[0].citation
    assert level(q, at_once.section("20.3.2.2"), confident=False) != "emergency"
    assert level(q, eye("Needs immediate referral to the ophthalmologist").section("20.3.2.2"), True) == "emergency"
    for conditional in ("Refer immediately if vision worsens", "Refer immediately to ENT specialist if you cannot "
                        "remove it", "Refer patient to hospital immediately for:"):
        assert level(q, eye(conditional).section("20.3.2.2"), confident=True) != "emergency", conditional


def test_a_section_that_calls_its_condition_severe_or_fatal_is_urgent_only_when_resolved_with_confidence():
    chunks = [Chunk("p1", "2.1.6", "Plague", ("2",), "", (180,), ("130",),
                    "Severe acute bacterial infection with high fatality rate.\nManagement\n- Doxycycline")]
    s = Book(chunks).section("2.1.6")
    q = "A 25-year-old man with fever and a painful swollen node in the groin."
    assert level(q, s, confident=True) == "urgent"
    assert level(q, s, confident=False) == "routine"
    mild = Book([Chunk("o1", "21.1", "Otitis Externa", ("21",), "", (990,), ("940",),
                       "Inflammation of the outer ear canal.\nManagement\n- Clean the ear")]).section("21.1")
    assert level(q, mild, confident=True) == "routine"
    # the words that set the level are quoted, but never a dose from outside the cited passages
    iron = Book([Chunk("i1", "1.3.6", "Iron Poisoning", ("1",), "", (96,), ("76",),
                       "Doses >60 mg/kg can cause serious toxicity.\nManagement\n- IV fluids")]).section("1.3.6")
    t = triage("A child swallowed his mother's iron tablets.", question_population("a child"), iron, {}, True)
    assert t.level == "urgent" and "60 mg" not in t.because[0].finding and "serious" in t.because[0].finding
    # a long opening line is quoted up to a whole word
    long = Book([Chunk("l1", "1.3.7", "Poisoning", ("1",), "", (97,), ("77",),
                       "A severe condition where the patient deteriorates rapidly and needs a continuous watch by "
                       "staff.\nManagement\n- IV fluids")]).section("1.3.7")
    said = triage("A man drank poison.", question_population("a man"), long, {}, True).because[0].finding
    assert said.endswith("watch by\u2026\u201d")


def test_emergency_contraception_is_not_an_urgent_referral():
    chunks = [Chunk("c1", "15.1.10", "Summary of Medical Eligibility", ("15",), "", (700,), ("664",),
                    "Methods all couples can safely use.\nManagement\n- Emergency contraceptive pill (for "
                    "emergency use only) is safe for all couples and every method")]
    s = Book(chunks).section("15.1.10")
    assert level("A woman taking rifampicin asks which contraceptive method she can safely use.", s, True) == "routine"


def test_a_treatment_table_that_starts_above_health_centre_ii_makes_the_presentation_urgent():
    q = "A 40-year-old man with severe pain in the upper abdomen going to the back."

    def with_table(codes: str, tail: str):
        text = ("Inflammation of the pancreas.\nClinical features\n- Severe upper abdominal pain\nManagement\n"
                "TREATMENT LOC\n- Nil by mouth\n- IV fluids\n"
                f"{codes}\n- Give pethidine 50 mg IM {tail}")
        book = Book([Chunk("a1", "6.1.2", "Acute Pancreatitis", ("6",), "", (470,), ("420",), text)])
        return triage(q, question_population(q), book.section("6.1.2"), {}, False)

    for codes, tail, want in (("H\nH", "RR", "urgent"), ("HC3\nHC4", "H", "urgent"), ("HC2\nHC4", "H", "routine"),
                              ("", "", "routine")):
        assert with_table(codes, tail).level == want, (codes, tail)
    reason = with_table("HC3", "HC4").because[0]
    # a procedure offered at a higher level (no clinical features of its own) is not a presentation to refer
    vasectomy = Book([Chunk("v1", "15.2.11", "Vasectomy", ("15",), "", (720,), ("691",),
                            "A minor operation.\nManagement\nTREATMENT LOC\n- Counsel the client HC4")])
    assert triage(q, question_population(q), vasectomy.section("15.2.11"), {}, False).level == "routine"
    assert reason.source == "level-of-care" and "from HC3 up" in reason.finding and "p. 420" in reason.citation


def test_levels_of_care_are_read_from_table_lines_only():
    from ragcds.clinical import levels_of_care
    assert levels_of_care("HC3 HC4") == ["HC3", "HC4"] and levels_of_care("RRH") == ["RR"]
    assert levels_of_care("Give paracetamol 1 g every 8 hours HC2") == ["HC2"]
    assert levels_of_care("He was seen at HC3 yesterday") == [] and levels_of_care("TREATMENT LOC") == []


def test_signs_file_is_well_formed():
    rows = signs()
    assert len(rows) >= 20 and {r.level for r in rows} <= {"emergency", "urgent"}
    for r in rows:
        if not r.vitals:
            re.compile(r.finding)
    with pytest.raises(ValueError, match="needs id, level"):
        parse_signs("id\tlevel\twho\tfinding\tpdf_page\tquote\nx\tsevere\tany\tfoo\t1\tbar\n")
    with pytest.raises(ValueError, match="who"):
        parse_signs("id\tlevel\twho\tfinding\tpdf_page\tquote\nx\turgent\ttoddler\tfoo\t1\tbar\n")


@pytest.mark.integration
def test_every_sign_is_quoted_from_its_page_of_the_ucg():
    text = need(UCG_TEXT).read_text(encoding="utf-8")
    pages = {int(m.group(1)): " ".join(m.group(2).split()).lower()
             for m in re.finditer(r"\[\[page (\d+)\]\]\n(.*?)(?=\[\[page |\Z)", text, re.S)}
    missing = [s.id for s in signs() if " ".join(s.quote.split()).lower() not in pages.get(s.pdf_page, "")]
    assert missing == []


def test_a_danger_sign_is_cited_to_the_section_that_prints_it():
    """Two sections share PDF p. 69; the bleeding sign's words are in the second one, so it is cited there."""
    from ragcds.generate.answer import page_citations

    book = Book([Chunk("a1", "1.1.1", "Anaphylactic Shock", ("1",), "", (69,), ("3",), "Give adrenaline."),
                 Chunk("h1", "1.1.2", "Hypovolaemic Shock", ("1",), "", (69,), ("3",),
                       "Causes\n- Loss of blood due to internal or external haemorrhage")])
    assert page_citations(book)[69] == "§1.1.2 Hypovolaemic Shock, p. 3"
    q = "A 30-year-old man is bleeding heavily from a leg wound."
    t = triage(q, question_population(q), None, page_citations(book))
    assert t.level == "emergency" and t.because[0].citation.startswith("§1.1.2 Hypovolaemic Shock")


def test_the_triage_line_says_where_to_look_in_few_words():
    from ragcds.generate.compose import short_citation, triage_line

    assert short_citation("§17.3.21 Check for General Danger Signs, p. 826: \u201clethargic or unconscious\u201d") == \
        "§17.3.21, p. 826"
    assert short_citation("§10.1.4 Tuberculosis of the Spine (Pott\u2019s Disease), pp. 560\u2013561") == \
        "§10.1.4, pp. 560\u2013561"
    assert short_citation("PDF p. 874: \u201cNot feeding well\u201d") == "PDF p. 874"
    t = triage("A 2-year-old had a fit this morning.", question_population("a 2-year-old"), None,
               {156: "§1.4 Hypoxaemia, p. 90"})
    assert triage_line(t) == "Triage: EMERGENCY \u2014 a fit (§1.4, p. 90)"


def test_a_line_saying_the_condition_is_an_emergency_counts_in_any_part_but_not_for_a_sub_type():
    def eye(title: str, line: str):
        return Book([Chunk("e1", "20.1.8", title, ("20",), "", (931,), ("865",),
                           f"Inflammation of the eye after surgery.\nClinical features\n- Pain\nManagement\n- {line}\n"
                           "- Antibiotics")]).section("20.1.8")
    q = "A woman had eye surgery four days ago; the eye is now painful and red."
    said = eye("Postoperative Endophthalmitis", "It is a medical emergency; treat within an hour")
    assert level(q, said, confident=True) == "emergency" and level(q, said) == "urgent"
    sub_type = eye("Glaucoma", "Angle-closure glaucoma is a medical emergency that requires urgent treatment")
    assert level(q, sub_type, confident=True) != "emergency"


def test_fitted_and_prostration_are_danger_signs_and_their_look_alikes_are_not():
    assert level("A 3-year-old has fever, has fitted twice today and can no longer sit up by himself.") == "emergency"
    assert level("A 3-year-old with fever can no longer sit up by himself.") == "emergency"  # prostration (p. 233)
    assert level("A 7-year-old boy cannot sit still, fidgets and talks excessively.") == "routine"
    assert level("The clinic was fitted with solar panels; a 30-year-old man has a rash.") == "routine"
    # a floppy limb is not a floppy child (poliomyelitis); a floppy baby is
    assert level("A 4-year-old could not move his left leg, which is now floppy.") == "routine"
    assert level("A 4-day-old baby has stopped feeding well; she is floppy.") == "emergency"


def test_a_negation_reaches_a_few_words_only():
    q = "A 28-year-old woman who is not pregnant has had high fever with shaking chills and flank pain."
    assert not negated(q, q.index("shaking"))
    assert negated("She has not had any fits.", 18) and negated("no lip swelling and no difficulty breathing", 23)


def test_a_glucometer_reading_is_a_blood_glucose():
    assert vitals("He is sweaty; glucometer reading 2.1 mmol/L, pulse 112")["glucose"] == 2.1
    assert level("A 67-year-old man is sweaty; his glucometer reading is 2.1 mmol/L.") == "emergency"



def test_a_sub_type_the_book_calls_an_emergency_counts_for_a_presentation_of_that_sub_type():
    text = ("A group of disorders with optic nerve damage.\nClinical features\nOpen angle glaucoma\n"
            "- Mostly asymptomatic\n- Gradual loss of vision\nAngle-closure glaucoma\n"
            "- Sudden onset of severe eye pain and redness, with nausea, vomiting and headache\n"
            "- Coloured halos around lights\n- The affected eye feels hard\nManagement\n"
            "- Angle-closure glaucoma is a medical emergency that requires urgent reduction of intra ocular pressure\n"
            "- Timolol 0.5% eye drops")
    s = Book([Chunk("g1", "20.2.2", "Glaucoma", ("20",), "", (935,), ("869",), text)]).section("20.2.2")
    acute = "A 63-year-old woman has sudden severe eye pain, a red eye, vomiting and halos around lights."
    assert level(acute, s, confident=True) == "emergency"
    assert level("A 70-year-old man has gradual loss of vision and cupping of the disc.", s, confident=True) != \
        "emergency"


def test_a_charts_question_is_not_the_books_word_on_this_patient():
    text = "Look for palmar pallor. Is it\n- Severe palmar pallor?\n- Some palmar pallor?\nClassify\n- Give iron"
    s = Book([Chunk("a1", "17.3.7", "Check for Anaemia", ("17",), "", (912,), ("846",), text)]).section("17.3.7")
    assert level("A 3-year-old girl has some palmar pallor (not severe). What iron dose?", s, confident=True) == \
        "routine"
