"""Section units, two-level fusion, hubness, named sections, lexicon and the light query path (unit tier)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ragcds.config import RetrieveSettings
from ragcds.errors import CorruptIndex, StaleIndex
from ragcds.fusion import capped, coverage_rerank, word_coverage
from ragcds.index import store
from ragcds.index.build import build_index
from ragcds.index.sections import HUBNESS_FILE, UNITS_FILE, VECTORS_FILE, hubness, section_units, split_blocks
from ragcds.ingest.chunk import Chunk
from ragcds.lexicon import Lexicon, strip_measurements
from ragcds.population import conflicts, question_population, section_population
from ragcds.retrieve import HybridRetriever, NamedSections, fuse, named_boost, ranks_of, rrf_ranks
from tests.conftest import UCG_TEXT, need
from tests.fakes import FakeEmbedder
from tests.pdfgen import make_guideline_pdf


def chunk(section: str, title: str, text: str, page: int = 1) -> Chunk:
    return Chunk(f"{section}-{page}", section, title, ("1 Chapter", f"{section} {title}"), "", (page,),
                 (str(page),), text)


def test_split_blocks_takes_clinical_features_up_to_the_next_subheading():
    text = "ICD10 CODE: B50\nA disease of the blood.\nClinical features\n~ Fever\n~ Convulsions\nManagement\n~ Give X"
    lead, features = split_blocks(text)
    assert lead == ["A disease of the blood."]
    assert features == ["~ Fever", "~ Convulsions"]


def test_section_units_one_per_section_features_else_opening_text():
    chunks = [
        chunk("2.1", "Malaria", "A parasite infection.\nClinical features\n~ Fever, chills", 10),
        chunk("2.1", "Malaria", "Management\n~ Give an ACT", 11),
        chunk("17.1", "Check for Fever", "ASK: does the child have fever?", 12),
    ]
    units = section_units(chunks)
    assert [u.section for u in units] == ["2.1", "17.1"]
    assert units[0].text == "Malaria. ~ Fever, chills" and units[0].pdf_pages == (10, 11)
    assert units[1].text == "Check for Fever. ASK: does the child have fever?"


def test_hubness_matches_brute_force():
    rng = np.random.default_rng(0)
    units = rng.normal(size=(12, 8)).astype(np.float32)
    units /= np.linalg.norm(units, axis=1, keepdims=True)
    chunks = rng.normal(size=(30, 8)).astype(np.float32)
    chunks /= np.linalg.norm(chunks, axis=1, keepdims=True)
    owner = rng.integers(0, 12, size=30)
    ch, uh = hubness(chunks, units, owner, neighbours=3)
    for i in range(30):
        sims = sorted((float(chunks[i] @ units[j]) for j in range(12) if j != owner[i]), reverse=True)
        assert ch[i] == pytest.approx(np.mean(sims[:3]), abs=1e-6)
    sims0 = sorted((float(units[0] @ units[j]) for j in range(1, 12)), reverse=True)
    assert uh[0] == pytest.approx(np.mean(sims0[:3]), abs=1e-6)


def test_ranks_and_rrf_skip_unranked_items():
    r = ranks_of(np.array([0.1, 3.0, 0.0, 2.0]), positive_only=True)
    assert r.tolist() == [3, 1, 0, 2]
    fused = rrf_ranks([r, np.array([1, 2, 3, 4])], k=10)
    assert fused[2] == pytest.approx(1 / 13)  # only the second ranking counts for item 2
    assert fused[1] == pytest.approx(1 / 11 + 1 / 12)


def test_fuse_lifts_chunks_of_the_section_whose_unit_matches():
    dense = np.array([0.90, 0.80, 0.10])  # chunk 0 (section 0) is best at chunk level
    bm25 = np.array([2.0, 1.9, 0.0])
    chunk_unit = np.array([0, 1, 1])
    unit = np.array([0.0, 1.0])  # but section 1's clinical features match the presentation
    off = RetrieveSettings(unit_weight=0.0, section_weight=0.0)
    final, _ = fuse(dense, bm25, unit, chunk_unit, 2, off)
    assert np.argmax(final) == 0
    on = RetrieveSettings(unit_weight=3.0, section_weight=3.0)
    final, section = fuse(dense, bm25, unit, chunk_unit, 2, on)
    assert np.argmax(final) == 1 and np.argmax(section) == 1


def test_word_coverage_weighs_rare_words_and_counts_each_once():
    n = 100
    rare, common = np.array([3]), np.arange(10, 70)  # idf log(100/2) vs log(100/61)
    a = np.zeros(n, bool)
    a[[3, 70]] = True  # holds the rare word only
    b = np.zeros(n, bool)
    b[[10, 11, 12]] = True  # holds the common word (three times) only
    cover = word_coverage([rare, common], n, [a, b])
    idf = np.array([np.log(100 / 2), np.log(100 / 61)])
    assert cover.tolist() == pytest.approx([idf[0] / idf.sum(), idf[1] / idf.sum()])
    assert word_coverage([np.arange(n)], n, [a]).tolist() == [0.0]  # a word in every chunk weighs nothing
    assert word_coverage([], n, [a, b]).tolist() == [0.0, 0.0]


def test_capped_keeps_at_most_two_chunks_of_a_section_in_the_top_five():
    order = np.array([0, 1, 2, 3, 4, 5, 6, 7])
    unit = np.array([0, 0, 0, 0, 1, 2, 2, 3])  # chunks 0-3 of section 0, 4 of section 1, ...
    assert capped(order, unit, 2, 5).tolist() == [0, 1, 4, 5, 6, 2, 3, 7]
    assert capped(order, unit, 0, 5).tolist() == order.tolist()
    assert sorted(capped(order[::-1], unit, 1, 3).tolist()) == list(range(8))  # a permutation, nothing lost


def test_coverage_rerank_reorders_only_the_candidates_and_discounts_size():
    section = np.array([0.030, 0.029, 0.028, 0.010])
    out = coverage_rerank(section, [0, 1, 2], np.array([0.1, 0.9, 0.2]), [2, 2, 2], 0.3, 0.1)
    assert np.argsort(-out).tolist() == [1, 0, 2, 3]  # row 1 covers the question; row 3 stays last
    assert out[3] == section[3] and (out[:3] >= section[:3]).all()
    big = coverage_rerank(section, [0, 1], np.array([0.1, 0.5]), [1, 10**9], 0.3, 0.1)
    assert np.argmax(big) == 0  # a huge section's coverage is discounted by its size
    assert coverage_rerank(section, [0, 1], np.array([0.0, 1.0]), [1, 1], 0.0, 0.1).tolist() == section.tolist()


def test_named_sections_most_specific_multiword_title_only():
    named = NamedSections(["Malaria", "Complicated/Severe Malaria", "Appendicitis (Acute)", "Pain"])
    n = named.named("What are the signs of severe malaria in a child with acute pain?")
    assert n.tolist() == [0, 2, 0, 0]


def test_named_sections_find_every_occurrence_and_keep_the_longest_name():
    names = NamedSections(["Severe Malaria", "Malaria", "Severe Pneumonia", "Acute Severe Malaria In Children"])
    assert names.named("severe malaria and severe pneumonia").tolist() == [2, 0, 2, 0]
    assert names.named("acute severe malaria in children").tolist() == [0, 0, 0, 4]
    assert names.named("malaria").tolist() == [0, 0, 0, 0]  # one word names nothing


def test_the_start_of_a_long_title_names_it_unless_a_whole_title_stands_there():
    names = NamedSections(["Summary of Medical Eligibility for Contraceptives", "Severe Acute Malnutrition",
                           "Severe Acute Malnutrition in Infants Less than 6 Months"])
    assert names.named("According to the UCG summary of medical eligibility, which methods?").tolist() == [3, 0, 0]
    assert names.named("summary of medical").tolist() == [0, 0, 0]  # two words are not enough
    assert names.named("a child with severe acute malnutrition").tolist() == [0, 3, 0]
    assert names.named("severe acute malnutrition in infants less than 6 months").tolist() == [0, 0, 8]


def test_numpy_gelu_is_the_exact_erf_gelu():
    import math

    import numpy as np

    from ragcds.index.minilm import gelu

    x = np.linspace(-9, 9, 723, dtype=np.float32).reshape(1, 3, -1)
    exact = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x.ravel().tolist()]).reshape(x.shape)
    assert gelu(x).dtype == np.float32 and np.abs(gelu(x) - exact).max() < 2e-6


def test_named_boost_keeps_a_leading_subsection_first():
    section = np.array([0.5, 0.4, 0.3])
    names = ["6.5.4.3", "6.5.4", "2.1"]
    assert named_boost(section, np.array([0, 2, 2]), names, 5).tolist() == [0, 0, 1]
    assert named_boost(section, np.array([0, 0, 2]), names, 2).tolist() == [0, 0, 0]  # outside the top 2


def test_lexicon_parses_matches_whole_words_and_expands():
    lex = Lexicon.parse("# comment\nlay\tclinical\nfits\tconvulsions; seizures\nfit\tconvulsion\n"
                        "yellow eyes\tjaundice\n")
    assert lex.expand("A child with fits and yellow eyes") == "A child with fits and yellow eyes (convulsions; " \
        "seizures; jaundice)"
    assert lex.expand("the benefit of treatment") == "the benefit of treatment"
    assert lex.expand("jaundice and yellow eyes") == "jaundice and yellow eyes"  # already in the book's words
    with pytest.raises(ValueError, match="lexicon.tsv:1"):
        Lexicon.parse("no tab here\n")


def test_a_denied_lay_finding_adds_nothing_and_a_named_measurement_adds_its_name():
    lex = Lexicon.parse("fits\tconvulsions\nshaking chills\trigors\n@glucose<3\thypoglycaemia\n")
    assert lex.expand("A pregnant woman has a headache. She has not had any fits.") == \
        "A pregnant woman has a headache. She has not had any fits."
    assert lex.expand("She is not pregnant and has had fever with shaking chills").endswith("(rigors)")
    assert [lay for lay, _ in lex.matches("She has not had any fits.")] == ["fits"]  # unknown-word check still sees it
    assert lex.expand("Confused; glucometer reading 2.1 mmol/L") == "Confused; glucometer reading 2.1 mmol/L " \
        "(hypoglycaemia)"
    assert lex.expand("Confused; blood glucose 6.2 mmol/L") == "Confused; blood glucose 6.2 mmol/L"
    with pytest.raises(ValueError, match="lexicon.tsv:1: a measured finding"):
        Lexicon.parse("@weight<3\tlow birth weight\n")


def test_packaged_lexicon_has_the_reviewed_pairs():
    lex = Lexicon.load()
    pairs = dict(lex.pairs)
    assert "convulsions" in pairs["fits"] and pairs["yellow eyes"] == ("jaundice",)
    assert pairs["swollen legs"] == ("oedema",) and pairs["passing blood in urine"] == ("haematuria",)
    assert "pressure ulcer" in pairs["bedsore"] and pairs["bilharzia"] == ("schistosomiasis",)
    assert "haematemesis" in pairs["coffee ground vomit"] and pairs["bulging soft spot"] == ("bulging fontanel",)
    # ambiguous phrases ("knocked out" a tooth, "baby not moving" after birth) and the book's own words are not mapped
    assert not {"knocked out", "baby not moving", "feeling sick", "thrush", "tb", "dark urine"} & set(pairs)


def test_every_clinical_term_of_the_packaged_lexicon_is_the_books_own_word():
    text = " ".join(need(UCG_TEXT).read_text(encoding="utf-8").lower().split())
    lex = Lexicon.load()
    missing = [(lay, term) for lay, terms in (*lex.pairs, *lex.measured) for term in terms if term.lower() not in text]
    assert not missing, missing


def test_burning_the_sensation_is_not_the_injury_for_bm25():
    assert "burning" not in strip_measurements("A 62-year-old has burning pain and small blisters on his face")
    assert "burning" not in strip_measurements("Burning on passing urine for 2 days")
    assert "burning" in strip_measurements("A child pulled a pot of boiling water onto himself: burns, burning skin")


def test_strip_measurements_keeps_doses():
    q = "A 5-year-old, pulse 160/min, BP 85/55 mmHg, 39.8 °C for 3 days; took 500 mg and 2.5mg; Hb 7 g/dl"
    out = strip_measurements(q)
    assert "160" not in out and "85/55" not in out and "39.8" not in out and "5-year" not in out
    assert "500 mg" in out and "2.5mg" in out and "7 g/dl" in out


@pytest.fixture
def fake_index(tmp_path):
    pdf = make_guideline_pdf(tmp_path / "g.pdf")
    index = tmp_path / "index"
    build_index(pdf, index, FakeEmbedder(64), "fake:64")
    return index


def test_version_stores_section_files_in_the_manifest(fake_index):
    vdir = store.resolve_version_dir(fake_index)
    manifest = store.read_manifest(vdir)
    for name in (UNITS_FILE, VECTORS_FILE, HUBNESS_FILE):
        assert name in manifest.files and (vdir / name).exists()
    assert manifest.section_units == len((vdir / UNITS_FILE).read_text().splitlines())
    np.load(vdir / VECTORS_FILE, allow_pickle=False)


def test_hybrid_retrieval_lists_sections_best_first(fake_index):
    r = HybridRetriever.open(fake_index, FakeEmbedder(64))
    units = r.sections.units
    target = units[len(units) // 2]
    res = r.retrieve(target.text, k=5)
    assert res.sections[0].section == target.section
    assert res.sections[0].best_rank >= 1 and len(res.hits) == 5
    assert [h.rank for h in res.hits] == [1, 2, 3, 4, 5]
    assert all(a.score >= b.score for a, b in zip(res.hits, res.hits[1:], strict=False))


def test_word_coverage_moves_the_section_that_holds_every_finding_first(fake_index):
    r = HybridRetriever.open(fake_index, FakeEmbedder(64))
    rows = {n: i for i, n in enumerate(r._section_names)}
    section = np.zeros(len(rows))
    section[[rows["2.1.1"], rows["1.2.1"], rows["1.1.2"], rows["2.2.1"]]] = [0.033, 0.032, 0.031, 0.030]
    question = "sunken eyes and a slow skin pinch"  # words only §1.1.2 Dehydration's table holds
    out = r._rerank_sections(section, question)
    assert int(np.argmax(out)) == rows["1.1.2"]
    assert np.argsort(-out)[:4].tolist() == [rows["1.1.2"], rows["2.1.1"], rows["1.2.1"], rows["2.2.1"]]
    assert r._subtree(rows["2.2"]).sum() == 3  # §2.2 with its sub-sections §2.2.1 and §2.2.1.1
    named = np.zeros(len(rows))
    named[rows["2.1.1"]] = 1  # the question names the leading section: the words around the name do not outvote it
    assert r._rerank_sections(section, question, named).tolist() == section.tolist()


def test_old_format_and_missing_section_files_are_refused_with_a_rebuild_hint(fake_index):
    vdir = store.resolve_version_dir(fake_index)
    (vdir / UNITS_FILE).unlink()
    with pytest.raises(CorruptIndex, match="rebuild: ragcds ingest"):
        HybridRetriever.open(fake_index, FakeEmbedder(64))
    manifest = json.loads((vdir / "manifest.json").read_text())
    manifest["format_version"] = 1
    (vdir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StaleIndex, match="rebuild it: ragcds ingest"):
        HybridRetriever.open(fake_index, FakeEmbedder(64))


def test_the_question_as_asked_is_embedded_only_when_it_has_a_word_the_book_never_uses(fake_index):
    emb = FakeEmbedder(64)
    lexicon = Lexicon.parse("weakness\tmalaise\nfits\tconvulsions\n")
    r = HybridRetriever(HybridRetriever.open(fake_index, emb).index, emb, lexicon=lexicon)
    known = "fever and weakness"  # expanded, every word in the book: only the expansion is embedded
    emb.calls.clear()
    res = r.retrieve(known)
    assert emb.calls == [1] and res.top_dense == pytest.approx(float((r.vectors @ emb._vec(r.expand(known))).max()))
    odd = "fits after eating zzyzx berries"  # a word the book never uses: its own closeness decides scope
    emb.calls.clear()
    res = r.retrieve(odd)
    assert emb.calls == [2] and res.top_dense == pytest.approx(float((r.vectors @ emb._vec(odd)).max()))


def test_search_path_does_not_import_torch():
    code = (
        "import sys, ragcds.cli.main, ragcds.retrieve, ragcds.index.minilm, ragcds.index.embedders; "
        "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("question, groups", [
    ("A 45-year-old man has fever and cough", {"adult"}),
    ("A 7-week-old baby has watery stools", {"child", "newborn"}),
    ("A 4-year-old girl has sores around her nose", {"child", "older child"}),
    ("A baby has had a fever for two days", {"child"}),
    ("A woman who is 9 weeks pregnant vomits everything", {"adult", "pregnancy"}),
    ("What is the dose of artesunate?", set()),
    # as a relative says it (found writing lay-worded questions): a girl with her mother is a child
    ("A girl of 20 months looks thin to her mother", {"child", "older child"}),
    ("My mother is 58. Her eyes have turned yellow", {"adult"}),
    ("A boy of 4 pushed a bean into his ear", {"child"}),
    ("His pulse is 110 and he is 35 years old", {"adult"}),
    ("She is 10 weeks pregnant", {"adult", "pregnancy"}),
])
def test_question_population(question, groups):
    assert set(question_population(question).groups) == groups


def test_population_conflicts_only_for_sections_written_for_another_group():
    child_pneumonia = section_population("Pneumonia in a Child of 2 months to 5 years")
    adult_pneumonia = section_population("Pneumonia in Children > 5 years and adults")
    imci = section_population("Check for Fever", ("17 Integrated Management of Newborn and Childhood Illness",))
    emtct = section_population("Elimination of Mother to Child Transmission of HIV")
    eclampsia = section_population("Eclampsia", ("16 Obstetric Conditions",))
    man, baby = question_population("A 45-year-old man"), question_population("A 7-week-old baby")
    woman = question_population("A woman receiving magnesium sulphate")
    assert conflicts(man, child_pneumonia) and conflicts(man, imci) and not conflicts(man, adult_pneumonia)
    assert conflicts(baby, eclampsia) and not conflicts(baby, imci) and not conflicts(baby, adult_pneumonia)
    assert not conflicts(woman, eclampsia)  # an adult woman is not assumed non-pregnant
    assert not emtct and not conflicts(man, emtct)  # "mother to child" names no child population


def test_the_books_newborn_band_and_the_two_months_to_five_years_band_do_not_cross():
    newborn = section_population("Assess for Special Treatment Needs, Local Infection",
                                 ("17 Childhood Illness", "17.1 Sick Newborn"))
    older = section_population("Check for Ear Problem", ("17.3 Sick Child Age 2 Months to 5 Years",))
    neonatal = section_population("Neonatal Meningitis")
    any_child = section_population("Impetigo in children")
    girl, week_old = question_population("A 4-year-old girl"), question_population("A 6-day-old baby")
    four_months, baby = question_population("A 4-month-old girl"), question_population("A baby with fever")
    assert conflicts(girl, newborn) and conflicts(four_months, neonatal) and not conflicts(girl, older)
    assert conflicts(week_old, older) and not conflicts(week_old, newborn) and not conflicts(week_old, neonatal)
    assert not conflicts(baby, newborn) and not conflicts(baby, older)  # no stated age: either band
    assert not conflicts(girl, any_child) and not conflicts(week_old, any_child)
    assert conflicts(question_population("A 45-year-old man"), newborn)  # still a child's section for an adult
