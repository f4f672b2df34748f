"""Extractive backend (the default when no model is given): no LLM, only the guideline's own lines.

It answers from the decision stage's result (ragcds.policy.Decision): the resolved section's parts that the
question asks for, whole blocks in book order within the character budget, each cited, with the likely
condition first for a presentation and the triage level last (ragcds.generate.compose). For xml/array the
packet's fields are filled from the same decision. It writes no text of its own, so nothing it shows needs
the dose check: every line is the book's.
"""

from __future__ import annotations

from ragcds.generate import compose
from ragcds.generate.base import GenerationRequest
from ragcds.generate.formats import render

NO_PASSAGES = "No UCG passages were provided, so the extractive backend cannot answer (it has no model)."


class ExtractiveGenerator:
    """Answers with the resolved section's own lines, each cited [n]; always parses."""

    backend = "extractive"
    model_id = "extractive"
    supports_system = True
    verbatim = True  # shows only guideline text: the dose check has nothing to check

    def generate(self, request: GenerationRequest) -> str:
        decision, passages = request.decision, list(request.passages)
        if decision is None or not passages:
            if request.format == "prose":
                return NO_PASSAGES
            return render({"level": "routine", "condition": "Not answered: no UCG passages were provided",
                           "confidence": "low", "actions": ["Consult the UCG 2023"],
                           "next_steps": ["Ask with an index (ragcds ingest)"],
                           "red_flags": ["None assessed"]}, request.format)
        if request.format == "prose":
            return compose.extractive_prose(decision, passages, request.triage)
        return render(compose.packet_fields(decision, passages, request.triage, ""), request.format)
