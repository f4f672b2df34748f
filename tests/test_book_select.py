"""The book's sections cut into parts and whole blocks; what the answer shows of them within the budget."""

from __future__ import annotations

from ragcds.book import Book, related
from ragcds.ingest.chunk import Chunk
from ragcds.select import block_scores, extra_blocks, part_blocks, select_part

TEXT = """ICD10 CODE: A01
An infection of the gut that spreads in dirty water.
Clinical features
~ Fever for more than 3 days, with headache
and abdominal pain
~ Relative bradycardia
~ Fever for more than 3 days, with headache
and abdominal pain
Investigations
- Blood culture
Management
TREATMENT LOC
Treatment of uncomplicated disease
- Give ciprofloxacin 500 mg every 12 hours
for 7 days
HC2
- Give oral rehydration salts
Treatment of severe disease
- Give IV fluids 20-
30 ml/kg over 1 hour
- Give ceftriaxone 2 g IV once daily
HC4
Prevention
~ Wash hands with soap"""


def book() -> Book:
    half = TEXT.index("Management")
    chunks = [Chunk("t1", "2.1.9", "Typhoid Fever", ("2 Infectious", "2.1.9 Typhoid Fever"), "", (100,), ("34",),
                    TEXT[:half].rstrip("\n")),
              Chunk("t2", "2.1.9", "Typhoid Fever", ("2 Infectious", "2.1.9 Typhoid Fever"), "", (101,), ("35",),
                    TEXT[half:])]
    return Book(chunks)


def scores_by_text(section, question: str) -> dict[str, float]:
    """Each block's match with the question (select.block_scores), by the block's text."""
    scores = block_scores(section, question)
    return {b.text: scores[b.order] for b in section.blocks}


def one_section(number: str, title: str, text: str):
    """A book of one section held in one chunk (page 100, printed 50)."""
    return Book([Chunk(f"c{number}", number, title, (number.split(".")[0],), "", (100,), ("50",), text)]
                ).section(number)


def test_parts_blocks_and_pages():
    s = book().section("2.1.9")
    assert s.part_names() == ["intro", "features", "investigations", "management", "prevention"]
    features = [b.text for b in part_blocks(s, "features")]
    # wrapped lines joined, the repeated item kept once, bullets stripped
    assert features == ["Fever for more than 3 days, with headache and abdominal pain", "Relative bradycardia"]
    mgmt = part_blocks(s, "management")
    texts = [b.text for b in mgmt]
    assert "Give IV fluids 20-30 ml/kg over 1 hour" in texts  # digits joined across the wrap, never altered
    assert not any(t in ("HC2", "HC4", "TREATMENT LOC") or t.startswith("Treatment of") for t in texts)
    assert {b.printed_page for b in mgmt} == {"35"} and mgmt[0].subhead == "Treatment of uncomplicated disease"


def test_selection_prefers_the_sub_part_the_question_names_and_keeps_book_order():
    s = book().section("2.1.9")
    blocks, more = select_part(s, "management", "Which fluids and antibiotic for severe typhoid disease?", 110)
    texts = [b.text for b in blocks]
    assert more and texts[0] == "Give IV fluids 20-30 ml/kg over 1 hour"
    assert all(b.subhead == "Treatment of severe disease" for b in blocks)
    assert sum(len(t) + 8 for t in texts) <= 110
    whole, more = select_part(s, "management", "typhoid", None)
    assert not more and len(whole) == 4 and [b.order for b in whole] == sorted(b.order for b in whole)


def test_section_family():
    b = book()
    assert related("2.5.2", "2.5.2.2") and related("2.5.2.2", "2.5.2.2") and not related("2.5.2.1", "2.5.2.2")
    assert b.parent("2.1.9") is None and b.children("2.1") == ["2.1.9"] and b.children("2.1.9") == []


RESUS = """ICD10 CODE: P21
A baby who does not breathe at birth.
TREATMENT LOC
Ventilation
- Ventilate with bag and mask at 40 breaths a minute
- Check the heart rate
Notes
- Keep the baby warm
If not gasping or breathing after 20 minutes of ventilation:
- Stop ventilation, the baby is dead
Harmful and ineffective resuscitation practices
- Do not hold the baby upside down"""


def test_a_treatment_table_header_opens_the_management_part_and_an_item_keeps_its_condition():
    s = one_section("16.5.2", "Newborn Resuscitation", RESUS)
    mgmt = part_blocks(s, "management")
    assert mgmt and mgmt[0].text.startswith("Ventilate with bag")  # "TREATMENT LOC" opened the part
    # the question names the ventilation sub-part first; the "dead" item is taken from another sub-part
    blocks, more = select_part(s, "management", "How do I ventilate with bag and mask, and when is the baby dead?",
                               250)
    texts = [b.text for b in blocks]
    assert more and "Stop ventilation, the baby is dead" in texts
    # the item is never shown without the condition it depends on
    assert texts.index("If not gasping or breathing after 20 minutes of ventilation:") == \
        texts.index("Stop ventilation, the baby is dead") - 1


def test_answer_lines_label_the_books_sub_headings():
    from ragcds.generate.compose import _block_lines
    from ragcds.policy import Selection

    s = one_section("16.5.2", "Newborn Resuscitation", RESUS)
    blocks = [b for b in part_blocks(s, "management") if b.text.startswith(("Stop", "Do not"))]
    lines = _block_lines(Selection("management", tuple(blocks), False), [], quote=False)
    assert lines[-2:] == ["Harmful and ineffective resuscitation practices:", "- Do not hold the baby upside down"]


def test_a_line_that_continues_another_is_never_shown_alone():
    text = ("Plague fever.\nManagement\nNursing\n- Give oral fluids and keep the patient cool\n"
            "- Isolate the patient from other people\nAntibiotics\n- Doxycycline 100 mg every 12 hours for 14 days\n"
            "- Chloramphenicol 500 mg every 6 hours\nChild: 25 mg/kg per dose")
    s = one_section("2.1.6", "Plague", text)
    blocks, _ = select_part(s, "management", "Nursing: oral fluids, keep cool, isolate; and the child dose?", 180)
    texts = [b.text for b in blocks]
    assert "Child: 25 mg/kg per dose" in texts
    # the child's dose is shown under the drug it belongs to, never alone
    assert texts[texts.index("Child: 25 mg/kg per dose") - 1] == "Chloramphenicol 500 mg every 6 hours"


def test_a_quoted_management_part_keeps_its_refer_immediately_line():
    text = ("Neonatal tetanus.\nManagement\nControl muscle spasm\n- Diazepam 0.2 mg/kg IV every 1 to 4 hours\n"
            "- Keep the baby in a quiet dark room\n- Give expressed breast milk by nasogastric tube\n"
            "- Clean the cord with chlorhexidine\n- Refer to hospital immediately")
    s = one_section("2.1.8.1", "Neonatal Tetanus", text)
    blocks, more = select_part(s, "management", "Which diazepam dose controls the muscle spasm?", 120)
    texts = [b.text for b in blocks]
    assert more and texts == ["Diazepam 0.2 mg/kg IV every 1 to 4 hours", "Refer to hospital immediately"]
    # a line another part already shows is not repeated
    rest, _ = select_part(s, "management", "Which diazepam dose controls the muscle spasm?", 120,
                          frozenset(b.order for b in blocks if b.text.startswith("Refer")))
    assert "Refer to hospital immediately" not in [b.text for b in rest]


def test_a_sub_heading_of_the_same_shape_is_never_read_as_a_wrapped_line():
    text = ("Dehydration.\nManagement\nMild dehydration\n- Give oral ORS 25 ml/kg in the first 4 hours\n"
            "- Increase or maintain until clinical improvement\nModerate dehydration\n"
            "- Give oral ORS 50 ml/kg in the first 4 hours\nSevere dehydration\n"
            "- Ringer's lactate IV, 50 ml/kg in the first 4 hours")
    s = one_section("1.1.3.2", "Dehydration", text)
    under = {b.text: b.subhead for b in part_blocks(s, "management")}
    assert under["Increase or maintain until clinical improvement"] == "Mild dehydration"
    assert under["Ringer's lactate IV, 50 ml/kg in the first 4 hours"] == "Severe dehydration"


def test_a_capitalised_lead_in_with_a_colon_is_not_glued_to_the_line_before():
    text = ("Pyelonephritis.\nManagement\n- Give paracetamol 1 g every 6-8 hours for pain and fever\n"
            "If outpatient (only adults):\n- Ciprofloxacin 500 mg every 12 hours for 7 days")
    s = one_section("7.2.2", "Acute Pyelonephritis", text)
    texts = [b.text for b in part_blocks(s, "management")]
    assert texts[:2] == ["Give paracetamol 1 g every 6-8 hours for pain and fever", "If outpatient (only adults):"]


def test_a_heading_after_a_complete_regimen_is_not_glued_to_the_dose_line():
    text = ("Chancroid.\nManagement\n- Give erythromycin 500 mg every 6 hours for 14 days\n"
            "If bubo persisting, and partner was not treated\n- Aspirate the bubo\n"
            "- Or azithromycin 1 g stat; child 20 mg/kg stat\nFor pyelonephritis\n- Ceftriaxone 1 g IV daily\n"
            "- Amoxicillin 500 mg every 8 hours for 5\ndays and review")
    s = one_section("3.2.5", "Chancroid", text)
    blocks = {b.text: b.subhead for b in part_blocks(s, "management")}
    assert blocks["Give erythromycin 500 mg every 6 hours for 14 days"] == ""
    assert blocks["Aspirate the bubo"] == "If bubo persisting, and partner was not treated"
    assert blocks["Ceftriaxone 1 g IV daily"] == "For pyelonephritis"
    assert "Amoxicillin 500 mg every 8 hours for 5 days and review" in blocks  # a wrapped regimen still joins


def test_refer_and_urgently_split_over_two_chart_lines_stay_one_instruction():
    text = "Danger signs.\nManagement\n- Keep the child warm REFER\nURGENTLY\n- Give diazepam if convulsing"
    s = one_section("17.3.21", "Check for General Danger Signs", text)
    assert [b.text for b in part_blocks(s, "management")][0] == "Keep the child warm REFER URGENTLY"


def test_the_items_of_a_list_take_the_match_of_the_caption_that_leads_into_them():
    """The question meets the caption ("danger signs ... as follows:"), not the rows under it, which are the
    answer; a column header row between them keeps the caption open, and the next caption ends the list."""
    s = one_section("16.6.1.1", "Postpartum Counselling", (
        "Provide the following counselling at all postpartum visits.\n"
        "Advise mother on danger signs as follows:\n"
        "TYPE OF DANGER SIGN ACTION TO TAKE\n"
        "- Fever or convulsions\n- Fast or difficult breathing\n- Too weak to get out of bed\n"
        "Keep the baby warm:\n- Skin to skin contact"))
    by_text = scores_by_text(s, "Which danger signs after childbirth should make a mother go to a health facility?")
    caption = by_text["Advise mother on danger signs as follows:"]
    assert caption > 0 and by_text["Fever or convulsions"] == by_text["Too weak to get out of bed"] == caption
    assert by_text["Skin to skin contact"] == 0
    shown = [b.text for b in extra_blocks(s, "Which danger signs should make a mother go to a health facility?",
                                          set(), 400)]
    assert "Fast or difficult breathing" in shown and "Skin to skin contact" not in shown


def test_two_list_items_printed_on_one_line_become_two_blocks():
    s = one_section("19.2.2.4", "Treatment of Associated Conditions", (
        "Management\n- Give maintenance IV fluids 4 ml/kg/hour f Transfuse 10 ml/kg slowly (over 3 hours)\n"
        "f Start refeeding"))
    assert [b.text for b in part_blocks(s, "management")] == [
        "Give maintenance IV fluids 4 ml/kg/hour", "Transfuse 10 ml/kg slowly (over 3 hours)", "Start refeeding"]


COPD = ("Chronic obstructive pulmonary disease.\nManagement\n- Treat with amoxicillin 500 mg every 8 hours for 7 days\n"
        "- Oral prednisolone 40 mg once daily in the morning for 5 days\n- Refer urgently to hospital if:\n"
        "- Rapid pulse or breathing\n- Tongue or lips are blue\n- Confused\n- Failure to improve\n"
        "- Give oxygen by nasal cannula (1-3 litres/min) if available\n" + "- Review the inhaler technique\n" * 8)


def test_a_line_ending_with_a_colon_is_shown_with_its_list_never_alone():
    s = one_section("5.1.2", "COPD", COPD)
    referral = [b.text for b in part_blocks(s, "referral")]
    assert referral == ["Refer urgently to hospital if:", "Rapid pulse or breathing", "Tongue or lips are blue",
                        "Confused", "Failure to improve"]
    shown, more = select_part(s, "management", "How is a COPD flare-up treated?", 260)
    texts = [b.text for b in shown]
    assert more and "Refer urgently to hospital if:" in texts and "Confused" in texts
    # a criterion outside the asked part comes with the line that leads into it
    extra = [b.text for b in extra_blocks(s, "Is a confused COPD patient referred?", set(), 400)]
    assert "Confused" in extra and "Refer urgently to hospital if:" in extra
    for budget in (60, 120, 200, 400):
        shown, _ = select_part(s, "management", "How is a COPD flare-up treated?", budget)
        texts = [b.text for b in shown]
        assert "Refer urgently to hospital if:" not in texts or "Rapid pulse or breathing" in texts, budget


def test_a_condition_line_never_continues_the_line_before_it():
    text = ("Nephrotic syndrome.\nManagement\n- Give antibiotic as in acute glomerulonephritis\n"
            "If patient from area of endemic schistosomiasis\n- Praziquantel 40 mg/kg single dose\n"
            "- Furosemide 1 mg/kg at the start of the transfusion\nWhen oedema has subsided and if still\n"
            "hypertensive:\n- Enalapril 5 mg daily")
    s = one_section("7.1.5", "Nephrotic Syndrome", text)
    blocks = {b.text: b.subhead for b in part_blocks(s, "management")}
    assert "Give antibiotic as in acute glomerulonephritis" in blocks
    assert blocks["Praziquantel 40 mg/kg single dose"] == "If patient from area of endemic schistosomiasis"
    assert "When oedema has subsided and if still hypertensive:" in blocks  # its own wrapped tail still joins


def test_also_in_this_section_shows_a_continuing_line_with_the_line_it_continues():
    text = ("Pneumonia by organisms.\nManagement\nChild 2 months-5 years\n- Cloxacillin 25-50 mg/kg IV every 6 hours\n"
            "- Plus gentamicin 7.5 mg/kg IV daily\nKlebsiella pneumonia\n- Gentamicin 5-7 mg/kg IV daily\n"
            "Prevention\n- Vaccinate")
    s = one_section("5.2.9.4", "Pneumonia by Specific Organisms", text)
    extra = [b.text for b in extra_blocks(s, "Is gentamicin given with it?", set(), 300)]
    assert "Plus gentamicin 7.5 mg/kg IV daily" in extra
    assert "Cloxacillin 25-50 mg/kg IV every 6 hours" in extra  # never "Plus …" alone


def test_a_heading_that_heads_nothing_is_shown_as_a_line():
    text = ("Severe acute malnutrition.\nManagement\nAdmission criteria\nAny pitting bilateral oedema of feet\n"
            "Weight for height below -3 SD\n- Admit to the stabilisation centre")
    s = one_section("19.2.3", "SAM", text)
    blocks = {b.text: (b.kind, b.subhead) for b in s.blocks}
    assert blocks["Any pitting bilateral oedema of feet"] == ("text", "")
    assert blocks["Admit to the stabilisation centre"][1] == "Weight for height below -3 SD"
    assert "Any pitting bilateral oedema of feet" in [b.text for b in part_blocks(s, "management")]


def test_a_page_break_or_a_level_of_care_code_ends_a_line_unless_it_plainly_wraps():
    first = Chunk("p1", "6.5.4", "Liver Cirrhosis", ("6",), "", (100,), ("50",),
                  "Liver cirrhosis.\nManagement\n"
                  "- Refer to a regional hospital or higher for the attention of specialist")
    second = Chunk("p2", "6.5.4", "Liver Cirrhosis", ("6",), "", (101,), ("51",),
                   "General principles\n- Give a low salt diet to patients with ascites and oedema of the\nlegs\nHC2\n"
                   "Caution\n- Avoid NSAIDs in patients with cirrhosis and ascites and impaired renal\nfunction")
    third = Chunk("p3", "6.5.4", "Liver Cirrhosis", ("6",), "", (102,), ("52",), "in all cases")
    texts = [b.text for b in Book([first, second, third]).section("6.5.4").blocks]
    assert "Refer to a regional hospital or higher for the attention of specialist" in texts
    assert "General principles" in texts and "Caution" in texts  # not glued across the page or the HC2 code
    assert "Give a low salt diet to patients with ascites and oedema of the legs" in texts
    # a lower-case wrap still joins across a page break
    assert "Avoid NSAIDs in patients with cirrhosis and ascites and impaired renal function in all cases" in texts


def test_a_lead_in_is_never_shown_without_the_line_that_follows_it():
    regimen = "Mifepristone (200mg) orally followed 1-2 days later by 400 micrograms misoprostol " * 4
    text = ("Fetal demise.\nManagement\nMedical management of IUFD (≥ 14 to ≤ 28 weeks)\n"
            "- Supportive care should be made available to all bereaved parents\n"
            "- a combination of mifepristone and misoprostol should be the first-line intervention:\n"
            f"- {regimen.strip()}\n- Review after two weeks")
    s = one_section("16.7", "Intrauterine Fetal Demise", text)
    for budget in (150, 200, 300, 2000):
        shown = [b.text for b in select_part(s, "management", "What is the first-line regimen?", budget)[0]]
        lead = "a combination of mifepristone and misoprostol should be the first-line intervention:"
        assert lead not in shown or regimen.strip() in shown, budget


def test_a_bullet_the_pdf_sets_on_a_wrapped_line_does_not_split_the_regimen():
    text = ("Paracetamol poisoning.\nManagement\n- Give acetylcysteine IV within 8 hours\n"
            "- 150 mg/kg (max 15 g) in 200 ml of Dextrose 5% in\n- 60 minutes followed by\n"
            "- 50 mg/kg (max 5 g) in Dextrose 5% 500 ml in 4 hours\n- Supportive treatment")
    texts = [b.text for b in one_section("1.3.5", "Paracetamol Poisoning", text).blocks]
    assert ("150 mg/kg (max 15 g) in 200 ml of Dextrose 5% in 60 minutes followed by 50 mg/kg (max 5 g) in "
            "Dextrose 5% 500 ml in 4 hours") in texts  # one regimen, as the book means it
    assert "Supportive treatment" in texts  # a capitalised item after a complete line stays apart


def test_a_short_heading_over_a_list_is_not_glued_to_the_line_before_it():
    text = ("Combined oral contraceptives.\nManagement\n- Clients concerned by irregular menstrual cycles\n"
            "Contraindications\n- Diastolic BP >100 mmHg\n- Antiemetics if necessary e.g. metoclopramide 10 mg\n"
            "IM or IV\n- Viral load/CD4 for\nHIV positive mothers\n- Review in 3 months")
    blocks = {b.text: b.subhead for b in one_section("15.2.3", "COCs", text).blocks}
    assert "Clients concerned by irregular menstrual cycles" in blocks
    assert blocks["Diastolic BP >100 mmHg"] == "Contraindications"
    assert "Antiemetics if necessary e.g. metoclopramide 10 mg IM or IV" in blocks  # a route is not a heading
    assert "Viral load/CD4 for HIV positive mothers" in blocks  # after "for" the line goes on


def test_a_line_just_before_a_list_is_its_caption_and_the_list_is_shown_whole():
    """ "Risk factors (and indication for screening)" has no colon, but the list under it is what it names."""
    s = one_section("16.2.5", "Diabetes in Pregnancy", (
        "Diabetes can be pre-existent or presenting during pregnancy.\n"
        "Risk factors (and indication for screening)\n"
        "- BMI >35 kg/m2\n- Age >40 years\n- GDM in previous pregnancy\n- Glycosuria\n"
        "Diagnostic criteria for gestational diabetes\n- Fasting blood sugar >5.6 mmol/L or"))
    q = "Which pregnant women should be screened for gestational diabetes?"
    by_text = scores_by_text(s, q)
    assert by_text["Age >40 years"] == by_text["Risk factors (and indication for screening)"] > 0
    shown = [b.text for b in extra_blocks(s, q, set(), 400)]
    assert {"BMI >35 kg/m2", "Age >40 years", "GDM in previous pregnancy", "Glycosuria"} <= set(shown)


def test_a_part_no_line_of_which_matches_is_read_from_its_start():
    """Nothing in the management matches "itchy weals": show it from the top (adrenaline), not one line."""
    s = one_section("1.1.1", "Anaphylactic Shock", (
        "Management\nGeneral measures\n- Determine and remove the cause\nSecure the airways\n"
        "- Restore BP: lay the patient flat\n"
        "- Adrenaline injection 1 in 1000 0.5 mg IM immediately\n- Child <6 years: 150 micrograms\n"
        "In severely affected patients\n- Hydrocortisone 200 mg IM or slow IV stat\n"
        "Prevention\n- Ask about allergies"))
    blocks, more = select_part(s, "management", "Itchy weals after eating fish: how should I treat her?", 200)
    texts = [b.text for b in blocks]
    assert texts[:3] == ["Determine and remove the cause", "Restore BP: lay the patient flat",
                         "Adrenaline injection 1 in 1000 0.5 mg IM immediately"] and more


def test_a_population_word_inside_a_line_does_not_pick_the_sub_part():
    """ "adult" in the antihistamine line must not put it before adrenaline for an adult's anaphylaxis; a
    sub-heading naming who it is for still counts."""
    s = one_section("1.1.1", "Anaphylactic Shock", (
        "Management\nGeneral measures\n- Determine and remove the cause\n"
        "- Adrenaline injection 1 in 1000 0.5 mg IM immediately\n"
        "If urticaria/itching\n- Give an antihistamine e.g. chlorpheniramine 4 mg every six hours\n"
        "- Or cetirizine 5 mg once daily for adults\n"
        "Older children and adults\n- Palpitations"))
    by_text = scores_by_text(s, "How do I manage anaphylactic shock in an adult?")
    assert by_text["Or cetirizine 5 mg once daily for adults"] == 0 < by_text["Palpitations"]
    blocks, _ = select_part(s, "management", "How do I manage anaphylactic shock in an adult?", 120)
    assert "Adrenaline injection 1 in 1000 0.5 mg IM immediately" in [b.text for b in blocks]


ASTHMA = ("Management\nMild to moderate HC3\n- Reassure patient; place him in a sitting position\n- Give salbutamol\n"
          "- Inhaler 2-10 puffs via a large volume spacer\n- Refer to higher level if not improving\n"
          "Severe HC4\n- Admit patient; place him in a sitting position\n"
          "- Give high flow oxygen continuously, at least 5 litres/minute\n- Give salbutamol\n"
          "- Inhaler 2-10 puffs via a large volume spacer\n- Prednisolone 50 mg (1 mg/kg for children)\n"
          "If breathing <30/minute or severe chest in-drawing\n- Continue ventilating\n"
          "Prevention\n- Avoid triggers")


def test_a_severe_presentation_reads_the_books_severe_sub_part_first_and_whole():
    s = one_section("5.1.1.1", "Acute Asthma", ASTHMA)
    q = "A breathless woman sits hunched in a chair. How should I manage her?"
    blocks, _ = select_part(s, "management", q, 200, severe=True)
    texts = [(b.subhead, b.text) for b in blocks]
    # the same salbutamol lines printed under both sub-headings belong to both: the severe sub-part keeps them
    assert texts[:3] == [("Severe HC4", "Admit patient; place him in a sitting position"),
                         ("Severe HC4", "Give high flow oxygen continuously, at least 5 litres/minute"),
                         ("Severe HC4", "Give salbutamol")]
    mild, _ = select_part(s, "management", q, 200)
    assert mild[0].subhead == "Mild to moderate HC3"
    # a condition that mentions "severe" is not a severity sub-part
    assert [b.subhead for b in select_part(one_section("16.5.1", "Newborn Resuscitation", ASTHMA.replace(
        "Severe HC4", "Ventilate")), "management", q, 120, severe=True)[0]][0] == "Mild to moderate HC3"


def test_a_severe_presentation_reads_first_aid_or_the_acute_sub_part_first():
    s = one_section("9.1.1", "Epilepsy", (
        "Management\nGeneral principles\n- Start with a single anti-epileptic medicine\n"
        "- Start with low doses and increase gradually according to response\n"
        "First aid for acute seizure\n- DO NOT RESTRAIN or put anything in the mouth\n"
        "- Protect person from injury\nPrevention\n- Avoid alcohol"))
    q = "A man with known epilepsy is brought in fitting for 40 minutes. How should I treat him?"
    severe = [b.subhead for b in select_part(s, "management", q, 110, severe=True)[0]]
    assert severe[0] == "First aid for acute seizure"
    assert [b.subhead for b in select_part(s, "management", q, 110)[0]][0] == "General principles"


def test_a_wrapped_tail_in_lower_case_never_opens_a_part():
    """ "management of the anxiety disorder" ends the fluoxetine line; it is not a heading over "Or Sertraline"."""
    from ragcds.clinical import part_of_heading

    assert part_of_heading("management of the anxiety disorder") is None
    assert part_of_heading("Management of severe malaria") == "management"
    s = one_section("9.2.1", "Anxiety Disorders", (
        "Management\n- Diazepam 5 mg once or twice a day\nIf poor response: refer to specialist\n"
        "Fluoxetine 20 mg once a day for long term\nmanagement of the anxiety disorder\n"
        "Or Sertraline 50mg once daily"))
    texts = [b.text for b in s.blocks]
    assert "Fluoxetine 20 mg once a day for long term management of the anxiety disorder" in texts
    assert all(b.part == "management" for b in s.blocks)


def test_a_dose_line_brings_its_other_patients_lines_and_is_never_a_caption():
    s = one_section("1.3.1.2", "Poisoning", (
        "Prevention of absorption\n- Dose: activated charcoal powder 50 g\n- Child: 0.5-1 g/kg\n"
        "- If patient unable to swallow the charcoal\nShock in malnourished child\n- Transfuse\n"
        "10 ml/kg slowly (over 3 hours)\n- Start refeeding\n- Start IV antibiotics."))
    from ragcds.select import other_populations

    blocks = s.blocks
    dose = next(b for b in blocks if b.text.startswith("Dose:"))
    assert [b.text for b in other_populations(blocks, dose)] == ["Child: 0.5-1 g/kg"]
    by_text = scores_by_text(s, "Over how many hours should I transfuse?")
    assert by_text["Start refeeding"] == 0  # "10 ml/kg slowly (over 3 hours)" leads nothing
    shown = [b.text for b in extra_blocks(s, "What is the activated charcoal dose?", set(), 200)]
    assert "Child: 0.5-1 g/kg" in shown


def test_a_population_label_counts_like_a_sub_heading():
    s = one_section("11.2.2.1", "Whole Blood", (
        "Management\n- Each unit of blood will raise the HB by about 1g/dl\nDose:\n- Adults: 1 unit at a time\n"
        "- Children: 20mL/kg\n- Or cetirizine 5 mg once daily for adults"))
    by_text = scores_by_text(s, "How much for children?")
    assert by_text["Children: 20mL/kg"] > by_text["Adults: 1 unit at a time"] == 0
    assert block_scores(s, "Which drug for adults?")[s.blocks[-1].order] == 0


def test_the_word_that_asks_for_management_picks_no_line_inside_it():
    s = one_section("9.2.2", "Depression", (
        "Management\nFirst line\n- Psychological therapy is first line for mild cases\n"
        "Referral\n- Refer for specialist management"))
    by_text = scores_by_text(s, "What is the first-line management for a mild case?")
    assert by_text["Refer for specialist management"] == 0
    assert by_text["Psychological therapy is first line for mild cases"] > 0


def test_a_lead_in_item_depends_on_no_earlier_caption_and_is_shown_with_what_it_leads_into():
    from ragcds.select import lead_in

    s = one_section("11.2.1", "Principles of Transfusion", (
        "Do not use blood transfusion to:\n- Expand blood volume, unless there has been blood loss of >30%\n"
        "- Enhance wound healing\n- Blood should not be transfused unless it has been:\n"
        "- Obtained from appropriately selected donors\n- Screened for HIV, hepatitis B, hepatitis C and syphilis"))
    blocks = s.blocks
    unless = next(b for b in blocks if b.text.startswith("Blood should not"))
    donors = next(b for b in blocks if b.text.startswith("Obtained"))
    assert lead_in(blocks, unless) is None and lead_in(blocks, donors) is None
    shown = [b.text for b in extra_blocks(s, "When should blood not be used for transfusion?", set(), 400)]
    for i, t in enumerate(shown):  # no line ending with ':' without the line it leads into
        if t.endswith(":"):
            assert i + 1 < len(shown) and blocks[[b.text for b in blocks].index(t) + 1].text == shown[i + 1]


def test_a_line_opening_with_a_dose_is_shown_with_the_short_instruction_it_doses():
    from ragcds.select import needs

    s = one_section("1.1.4.1", "IV Fluids", (
        "Management\nIf no improvement\n- Transfuse\n10 ml/kg slowly (over 3 hours)\n- Start refeeding"))
    blocks = [b for b in s.blocks if b.kind != "heading"]
    dose = next(b for b in blocks if b.text.startswith("10 ml/kg"))
    assert [b.text for b in needs(blocks, dose)] == ["Transfuse"]
    assert needs(blocks, next(b for b in blocks if b.text == "Start refeeding")) == []


def test_a_list_the_budget_cuts_keeps_its_best_matching_line_but_a_management_is_read_in_order():
    """A contraindication list read from its start must not lose the one line that names the patient's drugs;
    a management part keeps the book's order (first measures before a later line that matches better)."""
    s = one_section("15.2.4", "Progestogen-Only Pill (POP)", (
        "Pills with a very low dose of a progestin.\nContraindications\n"
        "- Breast or genital malignancy (known or suspected)\n- Pregnancy (known or suspected)\n"
        "- Breast cancer >5 years ago, and it has not recurred\n- Severe liver disease, infection, or tumor\n"
        "- Taking carbamazepine, phenytoin or rifampicin: these reduce the effectiveness of POPs\n"
        "- Undiagnosed vaginal bleeding\n"
        "Management\n- Correct precipitating factors and empty the gut\n- Give oral lactulose every 8 hours\n"
        "- Screen patients on rifampicin or phenytoin for varices by endoscopy"))
    q = "A woman taking rifampicin, phenytoin or carbamazepine: which methods should she avoid?"
    texts = [b.text for b in select_part(s, "intro", q, 180)[0]]
    assert any("carbamazepine" in t for t in texts) and texts[0].startswith("Breast or genital")
    managed = [b.text for b in select_part(s, "management", q, 110)[0]]
    assert managed == ["Correct precipitating factors and empty the gut", "Give oral lactulose every 8 hours"]


def test_a_template_heading_naming_a_condition_the_section_never_mentions_is_dropped():
    """The layout template prints "Management of pneumonia" over §6.5.4.3's tables (PDF pp. 504-505): it heads
    nothing there, and the lines after it are under no sub-heading (not under "If referral delays"). Only a
    heading the book prints in another section counts: one a section alone prints is its own."""
    hepatic = ("Confusion in liver disease with ascites.\nManagement\nManagement of pneumonia\n- Empty the gut\n"
               "- Give lactulose\nIf referral delays\n- Give metronidazole\nManagement of pneumonia\n"
               "- Screen for varices\nManagement of ascites\n- Restrict salt\nManagement of hepatorenal crisis\n"
               "- Refer")
    pneumonia = "Lung infection.\nManagement of pneumonia\n- Give amoxicillin"
    book = Book([Chunk("h", "6.5.4.3", "Hepatic Encephalopathy (HE)", ("6",), "", (504,), ("438",), hepatic),
                 Chunk("p", "5.2.9.3", "Pneumonia in Children > 5 years", ("5",), "", (430,), ("364",), pneumonia),
                 Chunk("q", "5.2.9.4", "Lung Abscess", ("5",), "", (433,), ("367",), "Management of ascites")])
    s = book.section("6.5.4.3")
    heads = [b.text for b in s.blocks if b.kind == "heading"]
    # ascites is named in the section; the hepatorenal crisis heading is printed in this section only
    assert "Management of pneumonia" not in heads
    assert "Management of ascites" in heads and "Management of hepatorenal crisis" in heads
    by_text = {b.text: b for b in s.blocks}
    assert by_text["Empty the gut"].subhead == "" and by_text["Screen for varices"].subhead == ""
    assert by_text["Give metronidazole"].subhead == "If referral delays"
    assert [b.order for b in s.blocks] == list(range(len(s.blocks)))
    own = book.section("5.2.9.3")
    assert own.blocks[1].text == "Management of pneumonia" and own.blocks[1].kind == "heading"


def test_a_dose_table_is_one_sub_part_under_its_title():
    """PDF p. 239: the IV artesunate table's row cells come out as short headings ("First dose: on admission
    Loading dose", "Third dose At 24 hours"); they are rows of the table titled "Dosage of …", which ends at a
    heading over bullets. A lower-case wrapped tail ("dose of antibiotics.") is no title."""
    s = one_section("2.5.2.2", "Complicated/Severe Malaria", (
        "Management\nDosage of intravenous artesunate for severe malaria Artesunate IV\nDOSE TIME QUANTITY\n"
        "First dose: on admission Loading dose\nAt 0 hours Child less than 20 kg: 3 mg/kg\n"
        "Adults and child >20kg: 2.4 mg/kg\nSecond dose At 12 hours\nThird dose At 24 hours\n"
        "Then once a day until patient is able to tolerate oral medication\n"
        "Preparation of IV or IM artesunate\n- Reconstitute each vial separately\n"
        "- Give the first\ndose of antibiotics.\n"))
    title = next(b.text for b in s.blocks if b.kind == "heading" and b.text.startswith("Dosage of intravenous"))
    rows = [b.text for b in s.blocks if b.subhead == title and b.kind != "heading"]
    assert rows[:3] == ["First dose: on admission Loading dose", "At 0 hours Child less than 20 kg: 3 mg/kg",
                        "Adults and child >20kg: 2.4 mg/kg"] and "Third dose At 24 hours" in rows
    assert {b.subhead for b in s.blocks if "Reconstitute" in b.text} == {"Preparation of IV or IM artesunate"}
    assert not any(b.kind == "heading" and b.text.startswith("dose of") for b in s.blocks)
    quote = select_part(s, "management", "What is the dose of artesunate for severe malaria in a child?", 240)[0]
    assert [b.text for b in quote][:3] == rows[:3]


def test_a_dose_table_title_leaked_onto_another_sections_table_is_dropped():
    """PDF pp. 241-243: "Dosage of IM artemether" is printed again over §2.5.3.3's complications table, which
    never mentions artemether; its rows (paracetamol, diazepam, dextrose) must not read as artemether's."""
    severe = "Artemether is an option.\nManagement\nDosage of IM artemether\nAt 0 hours 3.2 mg/kg\n"
    complications = ("Complications of severe malaria.\nManagement\nDosage of IM artemether\nCOMPLICATION TREATMENT\n"
                     "Hyperpyrexia Give paracetamol 1 g every 6 hours\n")
    book = Book([Chunk("a", "2.5.2.2", "Complicated/Severe Malaria", ("2",), "", (239,), ("173",), severe),
                 Chunk("b", "2.5.3.3", "Management of Complications of Severe Malaria", ("2",), "", (241,), ("175",),
                       complications)])
    rows = {b.text: b for b in book.section("2.5.3.3").blocks}
    assert "Dosage of IM artemether" not in rows
    assert rows["Hyperpyrexia Give paracetamol 1 g every 6 hours"].subhead == ""
    kept = {b.text: b for b in book.section("2.5.2.2").blocks}
    assert kept["At 0 hours 3.2 mg/kg"].subhead == "Dosage of IM artemether"


def test_a_sub_part_for_the_other_test_result_is_not_shown():
    s = one_section("2.5.3.3", "Management of Complications of Severe Malaria", """Management
Management of RDT positive patients
- Give artesunate and refer
Management of RDT/Blood Smear Negative Patients
- Withhold treatment for malaria and look for other causes of fever""")
    positive = "A 3-year-old has fever and fits; his malaria RDT is positive. What should I give before referral?"
    shown, _ = select_part(s, "management", positive, 60)
    assert [b.text for b in shown] == ["Give artesunate and refer"]
    assert all("Withhold" not in b.text for b in extra_blocks(s, positive + " Withhold treatment?", set(), 400))
    negative = "A child has fever; the malaria RDT is negative. What should I do?"
    assert any("Withhold" in b.text for b in select_part(s, "management", negative, None)[0])


def test_the_parts_heading_printed_again_atop_a_page_continues_the_sub_part():
    first = Chunk("h1", "4.1.1", "Deep Vein Thrombosis", ("4",), "", (300,), ("299",),
                  "A clot.\nManagement\n- Enoxaparin 1 mg/kg every 12 hours for at least 5 days\n"
                  "If enoxaparin not available\n- Unfractionated heparin given as: 5000 units IV bolus")
    second = Chunk("h2", "4.1.1", "Deep Vein Thrombosis", ("4",), "", (301,), ("300",),
                   "Management\n- Or 333 units/kg SC as an initial dose\n- Plus warfarin as above")
    blocks = Book([first, second]).section("4.1.1").blocks
    or_line = next(b for b in blocks if b.text.startswith("Or 333"))
    assert or_line.subhead == "If enoxaparin not available"  # not an alternative enoxaparin dose
    # the same heading inside a page opens the part afresh
    inside = Chunk("h3", "4.1.2", "Other", ("4",), "", (302,), ("301",),
                   "Management\nIf severe\n- Give oxygen\nManagement\n- Or rest")
    assert next(b for b in Book([inside]).section("4.1.2").blocks if b.text == "Or rest").subhead == ""


def test_a_list_the_budget_cuts_is_marked_where_it_is_cut():
    from ragcds.generate.compose import _block_lines
    from ragcds.policy import select_sections
    from ragcds.question import analyse

    items = "\n".join(f"- Contraindicated drug number {i} with a long explanatory tail of words" for i in range(9))
    text = f"Use with care.\nManagement\nDrugs to avoid using\n{items}"
    book = Book(one_section("7.1.3", "Use of Drugs in Renal Failure", text).chunks)
    q = "Which drugs should be avoided in renal failure?"
    sel = select_sections(q, analyse(q), book, "7.1.3", 300, False)
    lines = _block_lines(sel[0], [], quote=False)
    assert lines[-1].startswith("- [\u2026 ") and lines[-1].endswith("more, p. 50]")
    shown = sum(1 for x in lines if x.startswith("- Contraindicated"))
    assert lines[-1] == f"- [\u2026 {9 - shown} more, p. 50]"
    whole = select_sections(q, analyse(q), book, "7.1.3", 5000, False)
    assert not any("more, p." in x for x in _block_lines(whole[0], [], quote=False))


IUD = """Management
- Insert the IUD closely following recommended procedures; explain each step to the client
- How to check that the IUD is still in place after each menstruation
- To check each sanitary pad before disposal to ensure the IUD has not been expelled
Irregular Bleeding
- Give 400-800 mg ibuprofen eight hourly after meals for 5 days when irregular bleeding starts
Heavy Bleeding
- Give ibuprofen 400-800 mg every eight hours after meals for 5 days
- Give ferrous salt tablets (60 mg iron) to prevent anaemia
ART in Adults
- Start ART on the same day
"""


def test_the_sub_part_whose_heading_the_question_states_is_read_first():
    s = one_section("15.2.8", "Intrauterine Device (IUD) and ART", IUD)
    q = "A client with an IUD complains of heavy menstrual bleeding since insertion. What else should I check?"
    blocks, more = select_part(s, "management", q, 160)
    assert more and [b.subhead for b in blocks][:2] == ["Heavy Bleeding", "Heavy Bleeding"]
    # a heading of one word of the section's title ("ART") or a word of who the patient is names nothing
    q = "A woman with an IUD asks when adults start ART and how to check the IUD after each menstruation."
    assert select_part(s, "management", q, 160)[0][0].subhead != "ART in Adults"


OBSTRUCTION = """Management
Pre-operative management
- IV fluids (normal saline, Ringer's Lactate)
- Nasogastric tube decompression
- Nil by mouth
Post-operative antibiotics and analgesics
- Continue with analgesics after the operation, for colicky pain as needed
"""


def test_a_question_for_the_first_measures_reads_the_management_from_its_start():
    s = one_section("24.1.1", "Intestinal Obstruction", OBSTRUCTION)
    story = "A man who had an abdominal operation years ago has colicky pain and vomiting. "
    first = [b.text for b in select_part(s, "management", story + "What initial management is needed before "
                                         "surgery?", 100)[0]]
    assert first == ["IV fluids (normal saline, Ringer's Lactate)", "Nasogastric tube decompression"]
    # asked otherwise, the lines sharing the question's words come first
    other = [b.text for b in select_part(s, "management", story + "How should he be managed?", 90)[0]]
    assert other[0].startswith("Continue with analgesics")


ASTHMA_STEPS = """Management
Regular inhaled preventer therapy
- Salbutamol inhaler 1-2 puffs prn
- Plus regular standard-dose inhaled corticosteroid, e.g. beclomethasone 100-400 micrograms every 12 hours \
(children: 100-200 micrograms every 12 hours)
- Higher dose may be needed initially to gain control
- Doubling of the regular dose may be useful to cover exacerbations
"""


def test_a_management_list_never_shows_a_later_line_over_a_gap():
    s = one_section("5.1.1.2", "Chronic Asthma", ASTHMA_STEPS)
    q = "Which regular preventer should a child get when salbutamol is needed often, and at what dose?"
    texts = [b.text for b in select_part(s, "management", q, 120)[0]]
    # the inhaled steroid does not fit: the salbutamol line is not followed by "Higher dose …" as if it were next
    assert texts == ["Salbutamol inhaler 1-2 puffs prn"]
    # a "(children: …)" inside a regimen is that line's own dose, not another population's line for the one before
    assert [b.text[:4] for b in select_part(s, "management", q, 210)[0]] == ["Salb", "Plus"]


OSTEOMYELITIS = """Management
- Refer URGENTLY to hospital
- Admit and elevate affected limb
- Cloxacillin 500 mg IV every 6 hours for 2 weeks.
Continue orally for at least 4 weeks (but up to 3 months) Child: 50 mg/kg every 6 hours
- Surgical intervention may be indicated
"""


def test_an_adult_dose_is_never_shown_without_the_child_dose_the_pdf_sets_at_the_end_of_the_next_line():
    s = one_section("10.1.2", "Osteomyelitis", OSTEOMYELITIS)
    q = "A child has osteomyelitis. How is it managed?"
    for budget in (110, 140, 200, 260):
        texts = [b.text for b in select_part(s, "management", q, budget)[0]]
        if any(t.startswith("Cloxacillin") for t in texts):
            assert any("Child: 50 mg/kg" in t for t in texts), (budget, texts)


def test_an_imci_charts_column_header_opens_no_management_part():
    chart = """Classify and treat as below
Blood in stool
Dysentery - Give ciprofloxacin 15 mg/kg for 3 days for Shigella
CLASSIFY
AS
MANAGEMENT
If diarrhoea for 14 days or more:
- Give vitamin A; multivitamins and minerals (including zinc) for 14 days
"""
    s = one_section("17.3.3", "Child Has Diarrhoea", chart)
    assert "management" not in s.part_names()  # the chart's rows are not read as one condition's management
    assert one_section("6.1.5", "Diarrhoea", "Causes\n- Shigella\nMANAGEMENT\n- Give ORS").part_names() == [
        "causes", "management"]
