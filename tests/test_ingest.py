"""Unit tests of ingestion on a generated guideline-shaped PDF and on synthetic page texts."""

from __future__ import annotations

import re

import pytest

from ragcds.config import ChunkSettings
from ragcds.errors import InputPDFError
from ragcds.ingest.chunk import Chunk, chunk_sections, is_subheading
from ragcds.ingest.clean import UNMAPPED_MARK, CleanStats, clean_pages, map_glyphs
from ragcds.ingest.pdf import Page, assign_labels, int_to_roman, read_pdf, roman_to_int
from ragcds.ingest.structure import build_structure
from tests.pdfgen import DEFAULT_SECTIONS, SectionSpec, make_guideline_pdf


@pytest.fixture(scope="module")
def guideline(tmp_path_factory):
    path = make_guideline_pdf(tmp_path_factory.mktemp("pdf") / "guide.pdf")
    pages = read_pdf(path)
    cleaned, stats = clean_pages(pages)
    structure = build_structure(cleaned)
    labels = {p.pdf_page: p.label for p in pages}
    chunks = chunk_sections(structure.sections, labels, ChunkSettings(target_words=40, max_words=60))
    return pages, cleaned, structure, chunks


def test_roman_numerals_round_trip():
    for n in (1, 4, 9, 14, 40, 44, 90, 1994):
        assert roman_to_int(int_to_roman(n)) == n
    assert roman_to_int("IIII") is None and roman_to_int("HC") is None


def test_labels_read_from_page_text_not_offset():
    texts = ["cover", "Contents\nII", "Intro\nIII", "body\n1\nfooter", "a table\n7\nmore\n2", "x\n3", "no number here",
             "y\n5"]
    labels = assign_labels(texts)
    assert [lab for lab, _ in labels] == ["I", "II", "III", "1", "2", "3", "4", "5"]
    assert labels[4] == ("2", False)  # the stray "7" table cell is not taken
    assert labels[6] == ("4", True) and labels[0] == ("I", True)  # inferred from neighbours, marked


def test_generated_pdf_pages_and_labels(guideline):
    pages = guideline[0]
    assert [p.label for p in pages[:4]] == ["I", "II", "III", "1"]
    assert all(p.label == str(p.pdf_page - 3) for p in pages[3:])


def test_section_tree_follows_numbering_and_contents(guideline):
    structure = guideline[2]
    numbers = [s.number for s in structure.sections if s.number]
    assert numbers == [s.number for s in DEFAULT_SECTIONS]
    assert structure.toc_coverage == 1.0 and structure.toc_missing == []
    severe = next(s for s in structure.sections if s.number == "2.2.1.1")
    assert severe.title == "Complicated/Severe Malaria"
    assert severe.heading_path == ("2 Infectious Diseases", "2.2 Protozoal Parasites", "2.2.1 Malaria",
                                   "2.2.1.1 Complicated/Severe Malaria")


def test_dose_lines_and_numbered_list_items_are_not_headings(tmp_path):
    sections = (
        SectionSpec("1.1", "General", ("Intro line.",)),
        SectionSpec("1.1.1", "Dosing Rules", ("0.5 mg/kg per dose", "1.2 mg daily for adults", "3.1 Tablets twice",
                                              "Follow up in 2 weeks.")),
        SectionSpec("1.1.2", "Next Topic", ("Text.",)),
    )
    pages = read_pdf(make_guideline_pdf(tmp_path / "g.pdf", sections))
    structure = build_structure(clean_pages(pages)[0])
    assert [s.number for s in structure.sections if s.number] == ["1.1", "1.1.1", "1.1.2"]


def test_running_footers_and_page_numbers_removed(guideline):
    cleaned = guideline[1]
    body = [p for p in cleaned if p.pdf_page > 3]
    for p in body:
        assert not any("Uganda Clinical Guidelines" in line for line in p.lines)
        assert p.lines[-1].strip() != p.label
    assert body[0].running_title == "CHAPTER 1: Emergencies and Trauma"


def test_chunks_stay_inside_sections_with_metadata(guideline):
    structure, chunks = guideline[2], guideline[3]
    by_number = {s.number: s for s in structure.sections}
    for c in chunks:
        sec = by_number[c.section]
        section_lines = [line for _, line in sec.lines]
        for line in c.text.split("\n"):
            assert line in section_lines  # whole lines from this section only
        assert set(c.pdf_pages) <= set(sec.pdf_pages)
        assert len(c.printed_pages) == len(c.pdf_pages)
        assert re.fullmatch(r"[0-9a-f]{16}", c.chunk_id)
    assert len({c.chunk_id for c in chunks}) == len(chunks)
    assert "Contents" not in {c.title for c in chunks}  # the contents pages are not indexed


def test_table_rows_and_list_items_kept_whole(guideline):
    chunks = guideline[3]
    table_rows = ["Sign No dehydration Some dehydration Severe dehydration", "Eyes Normal Sunken Very sunken"]
    texts = [c.text for c in chunks if c.section == "1.1.2"]
    for row in table_rows:
        assert sum(row in t.split("\n") for t in texts) >= 1
    dose = "- Give IV artesunate 2.4 mg/kg at 0, 12 and 24 hours"
    assert any(dose in c.text.split("\n") for c in chunks)


def test_digits_intact_in_chunks(guideline):
    pages, chunks = guideline[0], guideline[3]
    source_numbers = re.findall(r"\d+(?:[./]\d+)*\s?(?:mg/kg|mg|ml/kg|ml|g|kg)\b", "\n".join(p.text for p in pages))
    joined = " ".join(" ".join(c.text.split()) for c in chunks)
    assert source_numbers
    for n in source_numbers:
        assert " ".join(n.split()) in joined


def test_chunk_citation_and_context(guideline):
    c = next(c for c in guideline[3] if c.section == "2.2.1.1")
    assert c.citation() == f"§2.2.1.1 Complicated/Severe Malaria, p. {c.printed_pages[0]}"
    assert c.index_text.startswith("2 Infectious Diseases › 2.2 Protozoal Parasites")


def test_chunk_size_limits_respected(guideline):
    for c in guideline[3]:
        assert len(c.text.split()) <= 60


def test_glyph_mapping_is_explicit_and_digit_safe():
    stats = CleanStats()
    assert map_glyphs("BP ³160/99 mmHg, length ³-2 z", stats) == "BP ≥160/99 mmHg, length ≥-2 z"
    assert map_glyphs("child £ 6 m", stats) == "child ≤ 6 m"
    assert map_glyphs("225 mg (¾ tab), 2¾ 3¼", stats) == "225 mg (¾ tab), 2¾ 3¼"  # fractions are numbers
    assert map_glyphs("Pulse Normal â ââ", stats) == "Pulse Normal ↓ ↓↓"
    assert map_glyphs("Capillary refill Normal á áá", stats) == "Capillary refill Normal ↑ ↑↑"
    assert map_glyphs("café", stats) == "café"  # letters with accents inside words are left alone
    assert map_glyphs("x \uf0e2 y", stats) == "x ↓ y"
    assert map_glyphs("a\x00b\ue000c", stats) == f"a{UNMAPPED_MARK}b{UNMAPPED_MARK}c"
    assert stats.unmapped_glyphs == {"U+0000": 1, "U+E000": 1}
    assert stats.glyphs_mapped["ge_from_superscript3"] == 2


def test_subheading_detection():
    assert is_subheading("Clinical features") and is_subheading("Management")
    assert not is_subheading("~ Fever") and not is_subheading("Give 5 mg") and not is_subheading("Stop.")


def test_clean_drops_only_the_label_line():
    page = Page(pdf_page=10, text="Dose table\n2\n4 Tablets\n2\nUganda Clinical Guidelines 2023CHAPTER 2: X", label="2")
    cleaned, _ = clean_pages([page])
    assert cleaned[0].lines == ("Dose table", "2", "4 Tablets")  # the earlier bare "2" is content


def test_the_wrapped_tail_of_a_running_title_is_not_read_as_a_heading():
    title = "Uganda Clinical Guidelines 2023CHAPTER 3: HIV/AIDS and Sexually Transmitted"
    words = ["cotrimoxazole", "isoniazid", "fluconazole", "dolutegravir", "tenofovir"]
    pages = [Page(pdf_page=250 + n, text=f"{n + 180}\n{title}\nInfections\n- Give {w}\nInfections with {w}",
                  label=str(n + 180)) for n, w in enumerate(words[:4])]
    pages.append(Page(pdf_page=260, text=f"{title}\nTREATMENT LOC\n- Give {words[4]}", label=""))
    cleaned, stats = clean_pages(pages)
    assert cleaned[0].lines == ("- Give cotrimoxazole", "Infections with cotrimoxazole")
    assert cleaned[0].running_title == "CHAPTER 3: HIV/AIDS and Sexually Transmitted Infections"
    assert cleaned[-1].lines == ("TREATMENT LOC", "- Give tenofovir")  # a line seldom after the title stays
    assert stats.running_lines_removed == 2 * 4 + 1


@pytest.mark.parametrize("kind", ["missing", "directory", "not_pdf", "corrupt", "encrypted", "no_text"])
def test_bad_pdfs_raise_one_line_errors(tmp_path, kind):
    path = tmp_path / "in.pdf"
    if kind == "directory":
        path.mkdir()
    elif kind == "not_pdf":
        path.write_text("hello, not a pdf")
    elif kind == "corrupt":
        path.write_bytes(b"%PDF-1.7\n" + b"\x00garbage" * 50)
    elif kind == "encrypted":
        make_guideline_pdf(path, encrypt=True)
    elif kind == "no_text":
        make_guideline_pdf(path, text_layer=False)
    with pytest.raises(InputPDFError) as err:
        read_pdf(path)
    msg = str(err.value)
    assert "\n" not in msg and "—" in msg  # one line, and it names the fix


def test_numbers_the_book_prints_twice_become_a_reprint_or_a_misnumbered_section():
    """The UCG prints §9.2 twice (the second §9.2.4.1 as "9.1.1.1"), then numbers Alcohol Use Disorders 9.1.1
    again; its contents list every repeat in book order. A reprint joins the section already read (its heading
    line kept as printed); a misnumbered section gets its own key, 9.1.1b, where it stands in the book."""
    from ragcds.ingest.clean import CleanPage

    toc = ("Contents", "9 MENTAL CONDITIONS ........ 488", "9.1 Neurological Disorders ........ 488",
           "9.1.1 Epilepsy ........ 488", "9.2 Psychiatric Disorders ........ 506", "9.2.1 Anxiety ........ 506",
           "9.2.2 Postnatal Psychosis ........ 508", "9.2 Psychiatric Disorders ........ 524",
           "9.2.1 Anxiety ........ 524", "9.1.1.1 Postnatal Psychosis ........ 526",
           "9.1.1 Alcohol Use Disorders ........ 528", "9.1.2 Substance Abuse ........ 530")
    body = [("9 MENTAL CONDITIONS", "9.1 NEUROLOGICAL DISORDERS", "9.1.1 Epilepsy ICD10 CODE: G40", "Fits."),
            ("9.2 PSYCHIATRIC DISORDERS", "9.2.1 Anxiety ICD10 CODE: F41", "Worry.",
             "9.2.2 Postnatal Psychosis ICD10 CODE: F53", "After delivery."),
            ("9.2 PSYCHIATRIC DISORDERS", "9.2.1 Anxiety ICD10 CODE: F41", "Worry, reprinted.",
             "9.1.1.1 Postnatal Psychosis ICD10 CODE: F53", "After delivery, reprinted."),
            ("9.1.1 Alcohol Use Disorders ICD10 CODE: F10", "Drinking.", "9.1.2 Substance Abuse", "Drugs.")]
    pages = [CleanPage(1, "I", toc)] + [CleanPage(i + 2, str(i + 1), lines) for i, lines in enumerate(body)]
    structure = build_structure(pages)
    by_key = {s.number: s for s in structure.sections if s.number}
    assert [k for k in by_key if k.startswith("9.1.")] == ["9.1.1", "9.1.1b", "9.1.2"]
    assert by_key["9.1.1b"].title == "Alcohol Use Disorders" and by_key["9.1.1"].title == "Epilepsy"
    assert by_key["9.1.1b"].heading_path == ("9 Mental Conditions", "9.2 Psychiatric Disorders",
                                             "9.1.1 Alcohol Use Disorders")
    assert [t for _, t in by_key["9.2.1"].lines] == ["ICD10 CODE: F41", "Worry.", "9.2.1 Anxiety ICD10 CODE: F41",
                                                     "Worry, reprinted."]
    assert by_key["9.2.2"].pdf_pages == [3, 4] and "9.1.1.1" not in by_key
    assert structure.toc_missing == []


def test_a_sub_section_printed_under_another_parent_is_placed_where_the_book_prints_it():
    """"16.5.1.2 Postpartum Examination of the Mother" stands inside §16.6.1 Postpartum Care in the book and its
    contents: its heading path (and so its population: a mother, not a newborn) follows the book, not the
    number."""
    from ragcds.ingest.clean import CleanPage

    toc = ("Contents", "16 OBSTETRIC CONDITIONS ........ 700", "16.5 Essential Care of the Newborn ........ 756",
           "16.5.1 Newborn Resuscitation ........ 756", "16.6 Postpartum Conditions ........ 764",
           "16.6.1 Postpartum Care ........ 764", "16.5.1.2 Postpartum Examination of the Mother ........ 767",
           "16.6.2 Postnatal Depression ........ 781")
    body = [("16 OBSTETRIC CONDITIONS", "16.5 ESSENTIAL CARE OF THE NEWBORN", "16.5.1 Newborn Resuscitation",
             "Dry the baby."),
            ("16.6 POSTPARTUM CONDITIONS", "16.6.1 Postpartum Care", "Care of the mother.",
             "16.5.1.2 Postpartum Examination of the Mother", "Examine the mother at 6 weeks."),
            ("16.6.2 Postnatal Depression", "Low mood after delivery.")]
    pages = [CleanPage(1, "I", toc)] + [CleanPage(i + 2, str(i + 1), lines) for i, lines in enumerate(body)]
    by_key = {s.number: s for s in build_structure(pages).sections if s.number}
    assert by_key["16.5.1.2"].heading_path[1:] == ("16.6 Postpartum Conditions", "16.6.1 Postpartum Care",
                                                   "16.5.1.2 Postpartum Examination of the Mother")
    assert by_key["16.6.2"].heading_path[1] == "16.6 Postpartum Conditions"


def test_a_misnumbered_section_keeps_its_printed_number_for_gold_sets_and_its_place_in_the_tree():
    from ragcds.book import Book, matches_gold, printed_number, related

    assert printed_number("9.1.3b") == "9.1.3" and printed_number("9.1.3") == "9.1.3" and printed_number("A1") == "A1"
    assert matches_gold("9.1.3b", "Childhood Behavioural Disorders", "9.1.3", "Childhood Behavioural Disorders")
    assert not matches_gold("9.1.3", "Headache", "9.1.3", "Childhood Behavioural Disorders")
    assert matches_gold("2.5.2.2", "Complicated/Severe Malaria", "2.5.2", "Malaria")  # a child of the gold
    assert not related("1.1.1b", "1.1") and related("1.1.1", "1.1") and related("9.1.3b", "9.1.3b")
    chunks = [Chunk("c1", "12.3", "Common Cancers", ("12 Oncology", "12.3 Common Cancers"), "", (612,), ("612",),
                    "Cancers."),
              Chunk("c2", "1.1.1b", "Common Cancers in Adults", ("12 Oncology", "12.3 Common Cancers",
                                                                  "1.1.1 Common Cancers in Adults"), "", (614,),
                    ("614",), "Breast cancer."),
              Chunk("c3", "1.1", "Common Emergencies", ("1 Emergencies", "1.1 Common Emergencies"), "", (20,),
                    ("1",), "Shock.")]
    assert Book(chunks).parent("1.1.1b") == "12.3"


def test_contents_lines_without_their_leader_dots_still_confirm_the_book_order():
    """The UCG's contents list "16.5.1.2 Postpartum Examination …" (a misprint) inside 16.6; the lines after
    it lost their dots and page numbers in the PDF's text layer ("16.6.2 Postnatal"). They still confirm the
    sections, so 16.6.2 and 16.6.3 are not swallowed by 16.5.1.2 (titles come from the body)."""
    from ragcds.ingest.clean import CleanPage

    toc = ("Contents", "16 OBSTETRIC CONDITIONS ....................... 700", "16.6 Postpartum Conditions ........ 764",
           "16.6.1 Postpartum Care", "16.5.1.2 Postpartum Examination of the Mother ........ 767",
           "16.6.2 Postnatal", "16.6.3 Mastitis/Breast Abscess")
    body = [("16 OBSTETRIC CONDITIONS", "16.6 POSTPARTUM CONDITIONS", "16.6.1 Postpartum Care ICD10 CODE: Z39",
             "Care of the mother after delivery."),
            ("16.5.1.2 Postpartum Examination of the Mother", "Examine the mother at 6 days and 6 weeks."),
            ("16.6.2 Postnatal Depression ICD10 CODE: F53", "Low mood after delivery.",
             "16.6.3 Mastitis/Breast Abscess ICD10 CODE: O91", "Painful red breast.")]
    pages = [CleanPage(1, "I", toc)] + [CleanPage(i + 2, str(i + 1), lines) for i, lines in enumerate(body)]
    structure = build_structure(pages)
    titles = {s.number: s.title for s in structure.sections if s.number}
    assert list(titles)[-3:] == ["16.5.1.2", "16.6.2", "16.6.3"]
    assert titles["16.6.2"] == "Postnatal Depression" and titles["16.6.3"] == "Mastitis/Breast Abscess"
    assert [t for _, t in next(s for s in structure.sections if s.number == "16.5.1.2").lines] == [
        "Examine the mother at 6 days and 6 weeks."]


def test_lines_the_book_prints_in_the_wrong_section_are_moved_with_their_pages():
    from ragcds.ingest.misprints import parse_misprints, relocate
    from ragcds.ingest.structure import Section

    organo = Section("1.3.2", "Organophosphate Poisoning", ("1",), [
        (138, "Management"), (138, " - Wash contaminated skin"),
        (138, "In moderate to severe poisoning (only if not responding to"), (138, " - Add pralidoxime 30 mg/kg IV")])
    paraffin = Section("1.3.3", "Paraffin Poisoning", ("1",), [
        (139, "Prevention"), (139, " - Atropine 2-4 mg IM or IV (according to the severity of"),
        (139, "the poisoning)"), (139, " - Reduce dose of atropine slowly over 24 hours but"),
        (139, "monitor for patient's status"), (140, " ~ Store paraffin safely")])
    rows = parse_misprints("pdf_page\tfirst\tlast\tto_section\tbefore\twhy\n"
                           "139\tAtropine 2-4 mg\tmonitor for patient\t1.3.2\tIn moderate to severe\tmisprint\n")
    report = relocate([organo, paraffin], rows)
    assert report == ["moved: PDF p. 139 'Atropine 2-4 mg' … 'monitor for patient' (4 lines) from §1.3.3 to §1.3.2"]
    assert [line for _, line in paraffin.lines] == ["Prevention", " ~ Store paraffin safely"]
    assert organo.lines[2] == (139, " - Atropine 2-4 mg IM or IV (according to the severity of")
    assert organo.lines[6][1].startswith("In moderate to severe") and len(organo.lines) == 8
    # a row that does not match this PDF (a corrected edition) moves nothing and says so
    assert relocate([organo, paraffin], rows) == ["not found: PDF p. 139 'Atropine 2-4 mg' → §1.3.2"]
    assert len(organo.lines) == 8
    with pytest.raises(ValueError, match="needs pdf_page"):
        parse_misprints("pdf_page\tfirst\tlast\tto_section\tbefore\twhy\n139\tAtropine\t\t1.3.2\t\tx\n")


def test_an_opening_the_text_layer_gives_before_its_heading_joins_its_section():
    from ragcds.ingest.misprints import displaced_openings
    from ragcds.ingest.structure import Section

    def sections():
        induction = Section("16.4.2", "Induction of Labour", ("16",), [
            (807, "Management"), (807, " - Misoprostol 25 micrograms"), (807, "Caution"),
            (808, "Causes"), (808, " - Cephalopelvic disproportion"), (808, "Clinical features"),
            (808, " - Contractions are strong but no descent")])
        obstructed = Section("16.4.3", "Obstructed Labour", ("16",), [
            (808, "16.4.3 Obstructed Labour"), (808, "Failure of labour to progress."),
            (809, "Management"), (809, " - Refer urgently")])
        return induction, obstructed

    induction, obstructed = sections()
    report = displaced_openings([induction, obstructed])
    assert report == ["moved: PDF p. 808 'Causes' … (4 lines) from §16.4.2 to §16.4.3, whose heading the "
                      "page's text gives after them"]
    assert [line for _, line in induction.lines][-1] == "Caution"
    assert [line for _, line in obstructed.lines][:4] == [
        "16.4.3 Obstructed Labour", "Failure of labour to progress.", "Causes", " - Cephalopelvic disproportion"]
    assert obstructed.lines[-2:] == [(809, "Management"), (809, " - Refer urgently")]
    # a section that has not reached its management yet keeps its causes (they are its own, read in order)
    induction, obstructed = sections()
    induction.lines = [line for line in induction.lines if line[1] not in ("Management", "Caution")]
    induction.lines = [(808, "Definition")] + [ln for ln in induction.lines if "Misoprostol" not in ln[1]]
    assert displaced_openings([induction, obstructed]) == [] and len(induction.lines) == 5


def test_a_chapter_number_printed_with_a_doubled_digit_is_read_as_printed_meant():
    from ragcds.ingest.structure import _TOC_LINE, heading_number

    assert heading_number("117.2.10 Counsel the Mother") == "17.2.10"
    assert heading_number("11.2.1 Anaemia") == "11.2.1" and heading_number("1.1 Shock") == "1.1"
    m = _TOC_LINE.match("117.2.10 Counsel the Mother ......................824")
    assert m.group("num") == "17.2.10" and m.group("title") == "Counsel the Mother"
