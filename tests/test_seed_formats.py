"""The seed MedGemma fine-tune's output contract: its XML system prompt reaches the model byte for byte, and
packets in the form such a fine-tune emits (written here as it would: levels, conditions, `|` lists, no
`[n]` citations, a trailing newline, spaces around `|`, a refusal) parse — through the answer pipeline too."""

from __future__ import annotations

import json

import pytest

from ragcds.generate.answer import answer_question
from ragcds.generate.formats import grammar, parse_output, xml_regex
from ragcds.generate.prompt import FORMAT_RULES, build_messages
from tests.fakes import FakeGenerator
from tests.test_ask_cli import FakeRetriever
from tests.test_formats import PASSAGES

# From the seed project, verbatim.
SEED_PROMPT = (
    "Respond in XML: <r><t>level</t><c>condition</c><cf>confidence</cf><sg>action1|action2</sg>"
    "<ns>follow-up1|follow-up2</ns><rf>danger1|danger2</rf></r>"
)

# Recorded-style packets: (reply, level, condition, confidence, actions, next steps, red flags).
SEED_PACKETS = [
    (
        "<r><t>emergency</t><c>Severe malaria with impaired consciousness</c><cf>high</cf>"
        "<sg>Give IV artesunate|Check blood glucose and correct hypoglycaemia|Refer to hospital</sg>"
        "<ns>Monitor level of consciousness|Repeat malaria test after 24 hours</ns>"
        "<rf>Convulsions|Coma|Unable to drink or breastfeed</rf></r>\n",
        "emergency",
        "Severe malaria with impaired consciousness",
        "high",
        ["Give IV artesunate", "Check blood glucose and correct hypoglycaemia", "Refer to hospital"],
        ["Monitor level of consciousness", "Repeat malaria test after 24 hours"],
        ["Convulsions", "Coma", "Unable to drink or breastfeed"],
    ),
    (
        "<r><t>urgent</t><c>Pneumonia with fast breathing</c><cf>medium</cf><sg>Give oral amoxicillin|Counsel "
        "caregiver on danger signs</sg><ns>Review after 2 days</ns><rf>Chest indrawing|Cyanosis</rf></r>",
        "urgent",
        "Pneumonia with fast breathing",
        "medium",
        ["Give oral amoxicillin", "Counsel caregiver on danger signs"],
        ["Review after 2 days"],
        ["Chest indrawing", "Cyanosis"],
    ),
    (  # spaces around pipes and inside tags, capitalised level: forgiven
        "<r><t>Routine</t><c> Acute diarrhoea with no dehydration </c><cf>high</cf><sg>Give ORS after each "
        "loose stool | Give zinc for 10 days</sg><ns>Return if not better in 3 days</ns><rf>Blood in stool | "
        "Sunken eyes</rf></r>",
        "routine",
        "Acute diarrhoea with no dehydration",
        "high",
        ["Give ORS after each loose stool", "Give zinc for 10 days"],
        ["Return if not better in 3 days"],
        ["Blood in stool", "Sunken eyes"],
    ),
    (  # the seed's refusal: a well-formed packet whose condition says the question is outside its scope
        "<r><t>routine</t><c>Outside scope: not covered by the Uganda Clinical Guidelines</c><cf>low</cf>"
        "<sg>Consult an appropriate clinician or reference</sg><ns>Ask about a clinical condition</ns>"
        "<rf>None</rf></r>",
        "routine",
        "Outside scope: not covered by the Uganda Clinical Guidelines",
        "low",
        ["Consult an appropriate clinician or reference"],
        ["Ask about a clinical condition"],
        ["None"],
    ),
]
QUESTION = "danger signs of severe malaria?"
NAMES = ("level", "condition", "confidence", "actions", "next_steps", "red_flags")


def test_seed_xml_prompt_reaches_the_model_byte_for_byte():
    assert FORMAT_RULES["xml"].startswith(SEED_PROMPT + "\n")
    system = build_messages("What are the signs of severe malaria?", PASSAGES, "xml")[0]["content"]
    assert SEED_PROMPT in system
    assert FORMAT_RULES["array"].startswith('Respond in JSON: ["level","condition","confidence",')


@pytest.mark.parametrize("packet", SEED_PACKETS, ids=lambda p: p[1] + "-" + p[2][:12])
def test_seed_packets_parse_as_xml_and_as_arrays(packet):
    reply, *values = packet
    fields, ok, cites = parse_output(reply, "xml", PASSAGES)
    assert ok and fields == dict(zip(NAMES, values, strict=True)) and cites == []  # no [n]: parses, cites none
    array = json.dumps(values)  # as a model writes it: `", "` separators
    assert parse_output(array, "array", PASSAGES)[0] == fields


def test_canonical_seed_packets_are_in_the_constrained_language():
    import re

    xgr = pytest.importorskip("xgrammar")
    g = xgr.Grammar.from_ebnf(grammar("xml"))
    for reply, *_ in SEED_PACKETS[:2] + SEED_PACKETS[3:]:
        assert xgr.testing._is_grammar_accept_string(g, reply.strip()) and re.fullmatch(xml_regex(), reply.strip())


@pytest.mark.parametrize(
    "reply",
    [
        SEED_PACKETS[1][0].replace("urgent", "moderate"),  # not a triage level
        SEED_PACKETS[1][0].replace("<cf>medium</cf>", ""),  # a missing tag
        SEED_PACKETS[1][0].replace("Cyanosis", "a|b|c|d"),  # five red flags
        SEED_PACKETS[1][0].replace("Cyanosis", ""),  # an empty item
        "Sure, here it is: " + SEED_PACKETS[1][0],  # words around the packet: repaired, not accepted as is
        SEED_PACKETS[1][0].replace("<r>", "<r>\n<x>1</x>"),  # an unknown tag
    ],
)
def test_what_stays_rejected(reply):
    assert parse_output(reply, "xml", PASSAGES)[1] is False


def test_seed_replies_through_the_answer_pipeline():
    packets = [p[0] for p in SEED_PACKETS]
    dosed = (
        "<r><t>emergency</t><c>Severe malaria</c><cf>high</cf><sg>Give IV artesunate 9 mg/kg</sg>"
        "<ns>Recheck in 12 hours</ns><rf>Coma</rf></r>"
    )
    gen = FakeGenerator([*packets, dosed])
    for packet in SEED_PACKETS:
        a = answer_question(QUESTION, generator=gen, retriever=FakeRetriever(), format="xml")  # type: ignore[arg-type]
        assert a.parse_ok and not a.repaired and a.fields["condition"] == packet[2] and a.text == packet[0]
    a = answer_question(QUESTION, generator=gen, retriever=FakeRetriever(), format="xml")  # type: ignore[arg-type]
    assert a.parse_ok and "9 mg/kg" not in a.text and a.fields["actions"][0].startswith("Give IV artesunate [dose")
    assert gen.requests[0].messages[0]["content"].count(SEED_PROMPT) == 1
