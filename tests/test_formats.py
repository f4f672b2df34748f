"""Formats: grammar text, strict parsers, renderers, repair, citation resolution."""

from __future__ import annotations

import json

import pytest

from ragcds.generate.formats import (
    extract_citations,
    grammar,
    json_schema,
    parse_output,
    render,
    repair,
    text_value,
    xml_regex,
)
from ragcds.ingest.chunk import Chunk
from ragcds.retrieve import Hit


def hit(
    n: int, section: str = "2.5.2.2", title: str = "Complicated/Severe Malaria", page: str = "100"
) -> Hit:
    c = Chunk(
        chunk_id=f"c{n}",
        section=section,
        title=title,
        heading_path=(title,),
        subheading="",
        pdf_pages=(int(page) + 20,),
        printed_pages=(page,),
        text=f"text {n}",
    )
    return Hit(rank=n, chunk=c, score=1.0 / n)


PASSAGES = [hit(1), hit(2, "1.3.2", "Acute Organophosphate Poisoning", "37")]
XML = (
    "<r><t>urgent</t><c>Severe malaria [1]</c><cf>high</cf><sg>Give IV artesunate [1]|Refer [2]</sg>"
    "<ns>Check glucose [1]</ns><rf>Convulsions [1]</rf></r>"
)
ARRAY = (
    '["urgent","Severe malaria [1]","high",["Give IV artesunate [1]","Refer [2]"],'
    '["Check glucose"],["Coma [3]"]]'
)


def test_xml_parses_with_citations():
    fields, ok, cites = parse_output(XML, "xml", PASSAGES)
    assert ok and fields["level"] == "urgent" and fields["actions"] == ["Give IV artesunate [1]", "Refer [2]"]
    assert [c.n for c in cites] == [1, 2] and all(c.valid for c in cites)
    assert cites[1].label() == "[2] §1.3.2 Acute Organophosphate Poisoning, p. 37"


def test_array_parses_and_flags_invalid_citation():
    fields, ok, cites = parse_output(ARRAY, "array", PASSAGES)
    assert ok and fields["red_flags"] == ["Coma [3]"] and fields["confidence"] == "high"
    bad = [c for c in cites if not c.valid]
    assert [c.n for c in bad] == [3] and "INVALID" in bad[0].label()


@pytest.mark.parametrize(
    "text",
    [
        XML.replace("urgent", "critical"),
        XML.replace("<cf>high", "<cf>sure"),
        XML.replace("Refer [2]", "a\nb"),
        XML.replace("|Refer [2]", "|a|b|c|d"),
        XML + " trailing",
        XML.replace("Severe malaria [1]", "x" * 121),
    ],
)
def test_xml_rejects_schema_violations(text):
    assert parse_output(text, "xml", PASSAGES)[1] is False


@pytest.mark.parametrize(
    "text",
    [
        ARRAY.replace('"high"', '"sure"'),
        ARRAY[:-1],
        '["urgent","c","high",[],["s"],["f"]]',
        "[1,2,3]",
        "not json",
        '["urgent","c|d","high",["a"],["s"],["f"]]',
    ],
)
def test_array_rejects_schema_violations(text):
    assert parse_output(text, "array", PASSAGES)[1] is False


def test_prose_citations_ranges_and_lists():
    assert extract_citations("a [1] b [2, 3] c [4-5] d [1]") == [1, 2, 3, 4, 5]
    fields, ok, cites = parse_output("Give ORS [1].", "prose", PASSAGES)
    assert fields is None and ok and cites[0].valid


def test_grammar_text_allows_citations_forbids_separators():
    g = grammar("xml")
    assert "[^<| \\x00-\\x1f]" in g and '"emergency" | "urgent" | "routine"' in g and "{0,3}" in g
    assert '\\"' in grammar("array")
    with pytest.raises(ValueError):
        grammar("prose")


def test_grammar_accepts_exactly_what_the_parser_accepts():
    xgr = pytest.importorskip("xgrammar")
    accept = xgr.testing._is_grammar_accept_string
    for fmt, good in (("xml", XML), ("array", ARRAY)):
        g = xgr.Grammar.from_ebnf(grammar(fmt))
        assert accept(g, good)
        assert not accept(g, good.replace("urgent", "urgentt"))
    assert not accept(xgr.Grammar.from_ebnf(grammar("xml")), XML.replace("Refer", "Re<fer"))


def test_regex_and_schema_agree_with_parser():
    import re

    assert re.fullmatch(xml_regex(), XML)
    schema = json_schema()
    assert schema["minItems"] == 6 and schema["prefixItems"][0]["enum"] == ["emergency", "urgent", "routine"]


def test_render_cleans_any_text_into_a_parseable_packet():
    fields = {
        "level": "emergency",
        "condition": 'Bad <tag> | "quoted"\nline',
        "confidence": "medium",
        "actions": ["a" * 300 + " 250 mg"],
        "next_steps": [],
        "red_flags": ["x", "y", "z", "w", "v"],
    }
    for fmt in ("xml", "array"):
        text = render(fields, fmt)
        parsed, ok, _ = parse_output(text, fmt, PASSAGES)
        assert ok, text
        assert len(parsed["red_flags"]) == 4
    assert json.loads(render(fields, "array"))[0] == "emergency"


def test_text_value_never_ends_on_a_bare_number():
    s = text_value("Give atropine " + "word " * 20 + "2 4 mg", limit=110)
    assert not s.rstrip("…").rstrip().split()[-1].isdigit()


def test_repair_completes_truncated_packets_and_never_invents_a_level():
    truncated = XML[:60]
    fixed = repair(truncated, "xml")
    assert fixed and parse_output(fixed, "xml", PASSAGES)[1]
    fixed = repair('Sure! ["emergency","Organophosphate poisoning [2]","hi', "array")
    fields, ok, _ = parse_output(fixed, "array", PASSAGES)
    assert ok and fields["level"] == "emergency" and fields["confidence"] == "high"
    assert repair("<r><t>", "xml") is None
    assert repair("I think it is malaria", "array") is None
