"""Extractive backend: ranks guideline lines by overlap with the question; all formats parse and cite."""

from __future__ import annotations

from ragcds.generate.backends.extractive import ExtractiveGenerator, ranked, triage_level
from ragcds.generate.base import GenerationRequest
from ragcds.generate.formats import parse_output
from ragcds.ingest.chunk import Chunk
from ragcds.retrieve import Hit


def chunk(cid: str, title: str, text: str, sub: str = "") -> Chunk:
    return Chunk(
        chunk_id=cid,
        section="2.1",
        title=title,
        heading_path=(title,),
        subheading=sub,
        pdf_pages=(10,),
        printed_pages=("5",),
        text=text,
    )


PASSAGES = [
    Hit(
        1,
        chunk(
            "a",
            "Severe Malaria",
            "Clinical features\n- Convulsions and coma are danger signs\n"
            "- Prostration: unable to sit or stand\nManagement\n- Give IV artesunate and refer urgently\n"
            "- Check blood glucose and monitor closely",
        ),
        0.9,
    ),
    Hit(
        2,
        chunk(
            "b",
            "Uncomplicated Malaria",
            "- Fever, headache and joint pains are common\n- Review after 3 days if fever persists",
        ),
        0.5,
    ),
]


def test_lines_ranked_by_overlap_with_question():
    best = ranked(PASSAGES, "What are the danger signs of malaria, like convulsions or coma?")[0][1]
    assert "Convulsions and coma" in best.text and best.n == 1
    best = ranked(PASSAGES, "headache and joint pains")[0][1]
    assert best.n == 2


def test_prose_cites_every_line():
    gen = ExtractiveGenerator()
    text = gen.generate(
        GenerationRequest(
            messages=[],
            format="prose",
            passages=tuple(PASSAGES),
            question="danger signs of severe malaria convulsions",
        )
    )
    lines = [x for x in text.splitlines() if x.startswith("- ")]
    assert lines and all(x.rstrip().endswith(("[1]", "[2]")) for x in lines)
    assert "Convulsions" in text


def test_xml_and_array_fields_from_passages():
    gen = ExtractiveGenerator()
    for fmt in ("xml", "array"):
        text = gen.generate(
            GenerationRequest(
                messages=[],
                format=fmt,
                passages=tuple(PASSAGES),
                question="A child with malaria has convulsions. What should I do?",
            )
        )
        fields, ok, cites = parse_output(text, fmt, PASSAGES)
        assert ok, text
        assert fields["level"] == "emergency" and fields["condition"] == "Severe Malaria [1]"
        assert any("artesunate" in a for a in fields["actions"])
        assert any("danger" in f or "refer" in f.lower() for f in fields["red_flags"] + fields["actions"])
        assert all(c.valid for c in cites)


def test_triage_rule_and_no_passages():
    assert triage_level("mild cough for two days", PASSAGES[1:]) == "routine"
    assert triage_level("a pregnant woman with headache", PASSAGES[1:]) == "urgent"
    text = ExtractiveGenerator().generate(GenerationRequest(messages=[], format="array", question="q"))
    assert parse_output(text, "array", [])[1]


def test_triage_lists_do_not_repeat_a_line_the_book_prints_twice():
    from ragcds.generate.backends.extractive import triage_fields

    twice = "- Follow up in 2 days and refer if not better"
    hits = [
        Hit(1, chunk("a", "Fever", f"Management\n{twice}\n- Give ORS"), 0.9),
        Hit(2, chunk("b", "Fever", f"Management\n{twice}\n- Review in 2 days"), 0.8),
    ]
    fields = triage_fields("child with fever: follow up when?", hits)
    listed = [x.rsplit(" [", 1)[0] for key in ("actions", "next_steps", "red_flags") for x in fields[key]]
    assert listed.count(twice.lstrip("- ")) == 1
