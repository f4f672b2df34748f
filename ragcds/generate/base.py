"""Shared types of the generation stage: the backend protocol and the answer record.

Every backend (transformers, openai-compatible, llama.cpp, extractive, and test fakes) implements
``Generator`` and is registered in ``ragcds.generate.backends`` like any other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from ragcds.retrieve import Hit

Format = Literal["prose", "xml", "array"]
FORMATS: tuple[str, ...] = ("prose", "xml", "array")

# The triage schema, defined once (documented in docs/formats.md).
TRIAGE_LEVELS: tuple[str, ...] = ("emergency", "urgent", "routine")
CONFIDENCE_LEVELS: tuple[str, ...] = ("high", "medium", "low")
# XML tag → field name, in packet order. The positional array holds the same six fields in this order.
TRIAGE_FIELDS: tuple[tuple[str, str], ...] = (
    ("t", "level"),
    ("c", "condition"),
    ("cf", "confidence"),
    ("sg", "actions"),
    ("ns", "next_steps"),
    ("rf", "red_flags"),
)

Message = dict[str, str]  # {"role": "user"|"assistant"|"system", "content": "..."}


@dataclass(frozen=True)
class GenerationRequest:
    messages: list[Message]
    format: Format = "prose"
    max_new_tokens: int = 256
    temperature: float = 0.0
    # passages offered to the model (extractive backend reads them directly; LLM backends see them in messages)
    passages: tuple[Hit, ...] = ()
    question: str = ""
    # the decision stage's result and the triage (ragcds.policy.Decision, ragcds.triage.Triage): the extractive
    # backend composes from them; model backends see only the messages
    decision: Any = None
    triage: Any = None


@runtime_checkable
class Generator(Protocol):
    """A generator backend: messages in, text out. Constrained formats must always parse."""

    backend: str  # "transformers", "openai", "llamacpp", "extractive", ...
    model_id: str

    def generate(self, request: GenerationRequest) -> str: ...


@dataclass
class Citation:
    """A `[n]` reference in an answer, resolved against the passages that were provided."""

    n: int
    valid: bool  # False when passage n was not provided
    chunk_id: str = ""
    section: str = ""
    title: str = ""
    printed_pages: tuple[str, ...] = ()
    pdf_pages: tuple[int, ...] = ()
    quoted: bool = False  # the cited passage is shown verbatim as the guideline's treatment text

    def label(self) -> str:
        if not self.valid:
            return f"[{self.n}] INVALID: no passage {self.n} was provided"
        pages = ", ".join(self.printed_pages)
        return f"[{self.n}] §{self.section} {self.title}, p. {pages}"


@dataclass
class Answer:
    question: str
    format: Format
    text: str  # the answer as shown (for xml/array: the raw packet)
    mode: Literal["rag", "closed-book"]
    policy: Literal["answered", "quoted", "refused", "candidates", "out_of_scope"]
    model: str
    backend: str
    passages: list[Hit] = field(default_factory=list)
    fields: dict[str, object] | None = None  # parsed triage fields (xml/array)
    parse_ok: bool = True
    citations: list[Citation] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    index_version: str = ""
    # added by issue #3 (all optional): the verbatim treatment quotation (policy "quoted"), warnings such as
    # removed dose strings or invalid citations, whether a malformed packet was repaired, and the raw reply.
    quote: str = ""
    notes: list[str] = field(default_factory=list)
    repaired: bool = False
    raw: str = ""
    # the decision stage (issue "Safe answers"): the sections the answer is about, primary first, as
    # {section, title, printed_pages, why}; why the outcome was chosen; the triage of a presentation
    resolved: list[dict] = field(default_factory=list)
    why: str = ""
    triage: dict | None = None
    ask: dict | None = None  # what the question asks: {parts, treatment, presentation, population}
