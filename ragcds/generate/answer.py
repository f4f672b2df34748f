"""The answer pipeline: retrieve → scope policy → prompt → generate → dose check → parse/repair → cite.

`answer_question` is the one function the CLI and the evaluator call. It does not write the audit log
(the CLI does, see ragcds.audit.log_answer), so evaluation runs stay out of the clinical log.
"""

from __future__ import annotations

import time
from typing import Any

from ragcds import policy as scope_policy
from ragcds.errors import IndexNotFound
from ragcds.generate.base import FORMATS, Answer, Citation, Format, GenerationRequest, Generator
from ragcds.generate.formats import parse_output, repair, resolve_citations
from ragcds.generate.prompt import build_messages, fit_messages
from ragcds.retrieve import Hit, HybridRetriever, check_question


def _index_version(retriever: Any) -> str:
    index = getattr(retriever, "index", None)
    try:
        return str(index.version_id) if index is not None else ""
    except (AttributeError, KeyError):
        return ""


def _merge(citations: list[Citation], more: list[Citation]) -> list[Citation]:
    seen = {c.n for c in citations}
    return citations + [c for c in more if c.n not in seen and not seen.add(c.n)]  # type: ignore[func-returns-value]


def answer_question(
    question: str,
    *,
    generator: Generator,
    retriever: HybridRetriever | None = None,
    format: Format = "prose",
    k: int = 5,
    rag: bool = True,
    policy: str = "quote",
    max_new_tokens: int = 256,
    temperature: float = 0.0,
) -> Answer:
    """Answer one question from the UCG with `generator`; rag=False asks the model closed-book."""
    t_start = time.perf_counter()
    q = check_question(question)
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    if policy not in scope_policy.POLICIES:
        raise ValueError(f"unknown policy {policy!r}; choose one of {', '.join(scope_policy.POLICIES)}")
    timings: dict[str, float] = {}
    notes: list[str] = []
    passages: list[Hit] = []
    scope = scope_policy.classify(q)
    base = dict(
        question=q,
        format=format,
        mode="rag" if rag else "closed-book",
        model=generator.model_id,
        backend=generator.backend,
        index_version=_index_version(retriever) if rag else "",
    )

    if rag:
        if retriever is None:
            raise IndexNotFound(
                "answering with passages needs an index — build one with `ragcds ingest "
                "ucg-2023.pdf` or pass --no-rag"
            )
        t0 = time.perf_counter()
        passages = retriever.search(q, k=k, mode="hybrid")
        outside, why = scope_policy.out_of_scope(retriever, q)
        timings["retrieve"] = time.perf_counter() - t0
        if outside or not passages:
            notes.append(f"out of scope: {why}")
            timings["total"] = time.perf_counter() - t_start
            return Answer(
                **base,
                text=scope_policy.OUT_OF_SCOPE_MESSAGE,
                policy="out_of_scope",
                passages=passages,
                fields=None,
                parse_ok=True,
                timings=timings,
                notes=notes,
            )

    quote = ""
    outcome = "answered"
    if scope.treatment:
        chunks = scope_policy.treatment_chunks(passages, getattr(retriever, "chunks", ()) if rag else ())
        numbers = []
        for c in chunks:
            idx = next((i for i, h in enumerate(passages) if h.chunk.chunk_id == c.chunk_id), None)
            if idx is None:
                passages.append(Hit(rank=len(passages) + 1, chunk=c, score=0.0))
                idx = len(passages) - 1
            numbers.append(idx + 1)
        if policy == "refuse":
            text = scope_policy.refusal(chunks, numbers)
            timings["total"] = time.perf_counter() - t_start
            notes.append(f"treatment question ({scope.reason!r}): refused by policy")
            return Answer(
                **base,
                text=text,
                policy="refused",
                passages=passages,
                fields=None,
                parse_ok=True,
                citations=resolve_citations(numbers, passages),
                timings=timings,
                notes=notes,
            )
        if chunks:
            outcome = "quoted"
            quote = scope_policy.quote_block(chunks, numbers)
            notes.append(
                f"treatment question ({scope.reason!r}): treatment quoted from the UCG, not generated"
            )
        else:
            notes.append(f"treatment question ({scope.reason!r}): no treatment passage to quote")

    t0 = time.perf_counter()
    messages = build_messages(q, passages, format, rag=rag, treatment=scope.treatment)
    messages = fit_messages(messages, bool(getattr(generator, "supports_system", True)))
    request = GenerationRequest(
        messages=messages,
        format=format,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        passages=tuple(passages),
        question=q,
    )
    timings["prompt"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    raw = generator.generate(request)
    timings["generate"] = time.perf_counter() - t0

    text, removed = scope_policy.check_doses(raw, passages)
    if removed:
        notes.append("removed dose strings not found in the passages: " + ", ".join(removed))
    fields, ok, citations = parse_output(text, format, passages)
    repaired = False
    if not ok and format != "prose":
        fixed = repair(text, format)
        if fixed is not None:
            fields, ok, citations = parse_output(fixed, format, passages)
            text, repaired = fixed, ok
            notes.append("the reply did not parse and was repaired (truncated or unconstrained output)")
    if not ok:
        notes.append(f"the reply does not parse as {format}; shown as received")
    if quote:
        _, _, quoted = parse_output(quote, "prose", passages)
        citations = _merge(citations, quoted)
    bad = sorted({c.n for c in citations if not c.valid})
    if bad:
        notes.append("invalid citations (no such passage was provided): " + ", ".join(f"[{n}]" for n in bad))
    timings["total"] = time.perf_counter() - t_start
    return Answer(
        **base,
        text=text,
        policy=outcome,
        passages=passages,
        fields=fields,
        parse_ok=ok,
        citations=citations,
        timings=timings,
        quote=quote,
        notes=notes,
        repaired=repaired,
        raw=raw,
    )


def answer_to_json(answer: Answer) -> dict:
    """The --json shape: answer, parsed fields, resolved citations, passages used, model, timings."""
    return {
        "question": answer.question,
        "answer": answer.text,
        "format": answer.format,
        "fields": answer.fields,
        "parse_ok": answer.parse_ok,
        "repaired": answer.repaired,
        "quote": answer.quote,
        "raw": answer.raw,
        "citations": [
            {
                "n": c.n,
                "valid": c.valid,
                "chunk_id": c.chunk_id,
                "section": c.section,
                "title": c.title,
                "printed_pages": list(c.printed_pages),
                "pdf_pages": list(c.pdf_pages),
                "label": c.label(),
            }
            for c in answer.citations
        ],
        "passages": [h.to_json() for h in answer.passages],
        "model": answer.model,
        "backend": answer.backend,
        "mode": answer.mode,
        "policy": answer.policy,
        "index_version": answer.index_version,
        "notes": answer.notes,
        "timings": {k: round(v, 4) for k, v in answer.timings.items()},
    }
