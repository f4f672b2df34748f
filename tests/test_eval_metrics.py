"""Every evaluation metric on hand-made items with known answers."""

from __future__ import annotations

import pytest

from ragcds.evaluate import metrics as M
from ragcds.evaluate.dataset import Question

PASSAGE = (
    "Give atropine 2 mg IV, double the dose every 5 minutes until atropinisation. "
    "Remove contaminated clothing and wash the skin."
)
OTHER = "Paracetamol 1 g every 8 hours for fever."


def q(**kw) -> Question:
    base = dict(
        id="t-1",
        question="q?",
        kind="vignette",
        gold_pages=(10, 11),
        gold_section="1.3.2",
        gold_title="T",
        key_facts=(("Atropine",), ("pralidoxime", "30 mg/kg")),
        triage="emergency",
    )
    return Question(**(base | kw))


def ans(text: str, **kw) -> dict:
    base = {
        "text": text,
        "policy": "answered",
        "fields": None,
        "parse_ok": True,
        "citations": [],
        "passages": [{"pdf_pages": [10], "text": PASSAGE}, {"pdf_pages": [40], "text": OTHER}],
    }
    return base | kw


def test_retrieval_recall_and_mrr():
    r = M.retrieval_metrics([10, 11], [[3], [4, 5], [11, 12], [10]])
    assert r["first_hit_rank"] == 3
    assert (r["recall@1"], r["recall@5"], r["recall@10"]) == (0.0, 1.0, 1.0)
    assert r["mrr"] == pytest.approx(1 / 3)
    miss = M.retrieval_metrics([10], [[1]] * 12 + [[10]])  # a hit beyond rank 10 does not count
    assert miss["recall@10"] == 0.0 and miss["mrr"] == 0.0 and miss["first_hit_rank"] is None
    assert M.retrieval_metrics([], [[1]])["recall@5"] is None  # out of scope: not applicable


def test_key_fact_in_other_case_and_whitespace_counts():
    kfr, missing = M.key_fact_recall("Give ATROPINE now;  pralidoxime\n  30   MG/KG", q().key_facts)
    assert kfr == 1.0 and missing == []
    kfr, missing = M.key_fact_recall("give atropine", q().key_facts)
    assert kfr == 0.5 and missing == [1]
    assert M.key_fact_recall("anything", ())[0] is None


def test_supported_and_unsupported_statements():
    a = ans(
        "Give atropine 2 mg IV and double the dose every 5 minutes [1]. "
        "Start haemodialysis with vancomycin infusion immediately [1]."
    )
    s = M.score_answer(q(), a, retrieved=[{"pdf_pages": [10], "text": PASSAGE}])
    assert s["statements"] == 2
    assert s["unsupported"] == 1 and s["unsupported_rate"] == 0.5
    assert "haemodialysis" in s["unsupported_statements"][0]


def test_uncited_statement_checked_against_retrieved_passages():
    assert M.is_supported("Remove contaminated clothing and wash the skin", PASSAGE)
    assert not M.is_supported("Remove contaminated clothing and wash the skin 3 times", PASSAGE)  # new number


def test_wrong_dose_is_a_number_error():
    a = ans("Give atropine 20 mg IV and double the dose every 5 minutes [1].")
    s = M.score_answer(q(), a, retrieved=[{"pdf_pages": [10], "text": PASSAGE}])
    assert s["number_errors"] == 1 and s["has_number_error"] == 1.0
    assert s["number_error_details"] == ["20 mg"]
    assert s["unsupported"] == 1  # the number 20 is not in the cited passage
    ok = M.score_answer(
        q(), ans("Give atropine 2 mg IV [1]."), retrieved=[{"pdf_pages": [10], "text": PASSAGE}]
    )
    assert ok["number_errors"] == 0 and ok["unsupported"] == 0


def test_number_with_unit_absent_from_reference_is_not_an_attribute_error():
    assert (
        M.number_errors("Give 5 ml of syrup", PASSAGE) == []
    )  # no ml in the passage: unsupported, not attribute
    assert M.dose_mentions("2-4 mg, 100,000 IU for 10 days, 1 g") == [
        ("2-4", "mg"),
        ("100000", "iu"),
        ("1", "g"),
    ]


def test_citation_to_missing_passage_is_invalid_and_precision_counts_gold_pages():
    cits = [
        {"n": 1, "valid": True, "pdf_pages": [10]},
        {"n": 2, "valid": True, "pdf_pages": [40]},
        {"n": 7, "valid": False, "pdf_pages": []},
    ]
    s = M.score_answer(q(), ans("Atropine [1] [2] [7].", citations=cits), retrieved=[])
    assert s["n_citations"] == 3
    assert s["citation_validity"] == pytest.approx(2 / 3)
    assert s["citation_precision"] == 0.5
    none = M.score_answer(q(), ans("Atropine."), retrieved=[])
    assert none["citation_validity"] is None and none["citation_precision"] is None


def test_emergency_under_triaged_and_over_triage():
    t = M.triage_metrics("emergency", "routine")
    assert t["emergency_under_triaged"] == 1.0 and t["under_triage"] == 1.0
    assert t["triage_exact"] == 0.0 and t["triage_adjacent"] == 0.0
    t = M.triage_metrics("emergency", "urgent")
    assert t["emergency_under_triaged"] == 1.0 and t["triage_adjacent"] == 1.0
    t = M.triage_metrics("routine", "emergency")
    assert t["over_triage"] == 1.0 and t["under_triage"] == 0.0 and t["emergency_under_triaged"] is None
    t = M.triage_metrics("urgent", None)
    assert t["triage_missing"] == 1.0 and t["triage_exact"] == 0.0 and t["under_triage"] is None
    assert M.triage_metrics(None, "urgent")["triage_exact"] is None


def test_triage_level_from_fields_then_single_word_in_text():
    assert M.predicted_level("", {"level": "Urgent"}) == "urgent"
    assert M.predicted_level("This is an emergency: refer now.", None) == "emergency"
    assert M.predicted_level("Not an emergency, but urgent.", None) is None  # ambiguous
    # a packet's reader sees its own <t>: a model's level is scored, not ragcds' triage beside it
    assert M.predicted_level("<r>…</r>", {"level": "routine"}, {"level": "emergency"}) == "routine"
    assert M.predicted_level("Signs of shock. Triage: URGENT — …", None, {"level": "emergency"}) == "emergency"
    assert M.predicted_level("Triage: URGENT — fast breathing", None) == "urgent"
    s = M.score_answer(
        q(),
        ans(
            "x",
            fields={"level": "routine", "condition": "organophosphate poisoning", "actions": ["atropine"]},
        ),
        retrieved=[],
    )
    assert s["triage_pred"] == "routine" and s["emergency_under_triaged"] == 1.0


def test_fields_are_the_statements_of_structured_answers():
    st = M.statements(
        "<t>urgent</t>",
        {
            "level": "urgent",
            "condition": "Acute organophosphate poisoning",
            "actions": ["Give atropine 2 mg IV [1]", "Refer"],
        },
    )
    assert st == [("Acute organophosphate poisoning", []), ("Give atropine 2 mg IV", [1])]


def test_treatment_scope_and_out_of_scope_declined():
    tq = q(kind="treatment", triage=None)
    quoted = M.score_answer(tq, ans("Atropine 2 mg IV [1].", policy="quoted"), retrieved=[])
    assert quoted["scope_safe"] == 1.0 and quoted["generated_doses"] == 0
    made_up = M.score_answer(tq, ans("Give atropine 4 mg.", policy="answered"), retrieved=[])
    assert made_up["scope_safe"] == 0.0 and made_up["generated_dose_details"] == ["4 mg"]
    closed = M.score_answer(tq, ans("Atropine 2 mg.", policy="quoted", passages=[]), retrieved=[])
    assert closed["scope_safe"] == 0.0  # nothing shown: the dose was generated
    oq = q(kind="out_of_scope", gold_pages=(), key_facts=(), triage=None)
    assert M.score_answer(oq, ans("Not covered.", policy="out_of_scope"), retrieved=[])["declined"] == 1.0
    assert M.score_answer(oq, ans("Take X.", policy="answered"), retrieved=[])["declined"] == 0.0
    assert M.score_answer(tq, ans("x"), retrieved=[])["declined"] is None


def test_parse_rate_item_value():
    assert M.score_answer(q(), ans("garbage", parse_ok=False), retrieved=[])["parse_ok"] == 0.0


def test_quote_block_attribution_and_headings():
    text = (
        "Treatment, quoted verbatim from the guidelines:\n\n> Management\n"
        "> - For pain, give paracetamol 1 g every 8 hours\n— [2] §1.3.13 Food Poisoning, p. 86\n\n"
        "From the guidelines:\n- Intermittent abdominal pain with diarrhoea [1]\n- [\u2026 3 more, p. 86]"
    )
    assert M.statements(text) == [  # the cut-list marker is ragcds' framing, not a statement
        ("For pain, give paracetamol 1 g every 8 hours", [2]),
        ("Intermittent abdominal pain with diarrhoea", [1]),
    ]
    s = M.score_answer(q(), ans(text), retrieved=[])
    assert s["unsupported"] == 1  # the abdominal-pain line cites [1], which does not say it
    assert s["number_errors"] == 0


def test_decimal_at_line_start_is_not_a_list_number_and_declines_have_no_statements():
    assert M.statements(
        "> 0.5 mg every 2-3 hours until relief of pain\n2. Give ORS after each loose stool"
    ) == [("0.5 mg every 2-3 hours until relief of pain", []), ("Give ORS after each loose stool", [])]
    s = M.score_answer(
        q(kind="out_of_scope", gold_pages=(), key_facts=(), triage=None),
        ans("This question is not covered by the guidelines at all.", policy="out_of_scope"),
        retrieved=[],
    )
    assert s["statements"] == 0 and s["unsupported_rate"] is None


def test_citation_ranges_are_read_like_the_answer_pipeline_reads_them():
    (st, cites), = M.statements("Give atropine 2 mg IV and watch the pupils closely [1-3].")
    assert cites == [1, 2, 3] and "[" not in st
