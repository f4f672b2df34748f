"""The answer pipeline in three typed stages, retrieval once:

    retrieve(question) → Retrieval          (ragcds.retrieve)
    decide(question, retrieval, book) → Decision   (ragcds.policy: pure)
    answer(question, retrieval, decision, generator, format) → Answer

`answer_question` composes them; the evaluator calls `answer` with the Retrieval it stored, so every mode sees
the same passages and nothing is searched twice. The audit log is written by the CLI / server, not here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from ragcds import clinical
from ragcds.book import Book
from ragcds.cautions import caution_for
from ragcds.errors import IndexNotFound
from ragcds.generate import compose
from ragcds.generate.base import FORMATS, Answer, Citation, Format, GenerationRequest, Generator
from ragcds.generate.formats import parse_output, render, repair, resolve_citations
from ragcds.generate.prompt import build_messages, fit_messages
from ragcds.policy import POLICIES, Decision, decide, widened
from ragcds.retrieve import Hit, Retrieval, check_question
from ragcds.triage import Triage, signs, triage

RETRIEVE_DEPTH = 10  # hits kept in a Retrieval: decisions look at the top 10
PROMPT_SECTION = 1300  # characters of the resolved section a model reads (the prompt's passages: 1400 in all)


class Source(Protocol):
    """What the pipeline needs from an index: one search, the book, the vocabulary (HybridRetriever)."""

    def retrieve(self, question: str, k: int = 10, mode: str = "hybrid") -> Retrieval: ...

    @property
    def book(self) -> Book: ...

    @property
    def vocabulary(self) -> Any: ...


@dataclass(frozen=True)
class Options:
    format: Format = "prose"
    k: int = 5
    rag: bool = True
    policy: str = "quote"
    max_new_tokens: int = 256
    temperature: float = 0.0
    full: bool = False

    def check(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"unknown format {self.format!r}; choose one of {', '.join(FORMATS)}")
        if self.policy not in POLICIES:
            raise ValueError(f"unknown policy {self.policy!r}; choose one of {', '.join(POLICIES)}")


def decide_for(question: str, retrieval: Retrieval, source: Source, opts: Options) -> Decision:
    return decide(question, retrieval, source.book, source.vocabulary, policy=opts.policy,
                  lexicon=getattr(source, "lexicon", None), budget=compose.BUDGET, full=opts.full)


def triage_for(question: str, decision: Decision, book: Book) -> Triage | None:
    """Every presentation gets a level (also out of scope: the findings still count)."""
    if not decision.ask.presentation:
        return None
    section = book.section(decision.resolved[0].section) if decision.resolved else None
    return triage(question, decision.ask.population, section, page_citations(book), decision.confident)


def page_citations(book: Book) -> dict[int, str]:
    """pdf page → '§section Title, p. printed' for triage citations: the section whose text on that page holds a
    danger sign's quote ("Loss of blood due to … haemorrhage" is §1.1.2's, not that of §1.1.1 ending on the same
    page), else the first section printed on it."""
    cached = getattr(book, "_page_citations", None)
    if cached is None:
        cached, quoted = {}, {}
        quotes: dict[int, list[str]] = {}
        for sign in signs():
            quotes.setdefault(sign.pdf_page, []).append(" ".join(sign.quote.lower().split()))
        for number in book.numbers():
            s = book.section(number)
            for c in s.chunks:
                text = " ".join(c.text.lower().split())
                for pdf, printed in zip(c.pdf_pages, c.printed_pages, strict=False):
                    cite = f"§{number} {s.title}, p. {printed or pdf}"
                    cached.setdefault(pdf, cite)
                    if any(q in text for q in quotes.get(pdf, ())):
                        quoted.setdefault(pdf, cite)
        cached |= quoted
        book._page_citations = cached  # type: ignore[attr-defined]
    return cached


def _fixed(question: str, decision: Decision, passages: list[Hit], text: str, opts: Options, base: dict,
           outcome: str, t: Triage | None) -> Answer:
    """An answer written by ragcds itself (out of scope, candidates, refusal): no model is asked."""
    fields = None
    if opts.format != "prose":
        fields = compose.packet_fields(decision, passages, t, text)
        text = render(fields, opts.format)
        fields, _, _ = parse_output(text, opts.format, passages)
    cits = resolve_citations([h.rank for h in passages if h.chunk.section in {r.section for r in decision.resolved}],
                             passages) if outcome != "out_of_scope" else []
    return Answer(**base, text=text, policy=outcome, passages=passages, fields=fields, parse_ok=True, citations=cits)


def answer(question: str, retrieval: Retrieval | None, decision: Decision | None, generator: Generator,
           opts: Options, book: Book | None = None) -> Answer:
    """Stage 3: the answer for one decision — ragcds' own text (out of scope, candidates, refusal), the
    extractive composition, or a model's answer from focused passages with the quote beside it."""
    t0 = time.perf_counter()
    base = dict(question=question, format=opts.format, mode="rag" if opts.rag else "closed-book",
                model=generator.model_id, backend=generator.backend,
                index_version=retrieval.index_version if retrieval and opts.rag else "")
    if not opts.rag or retrieval is None or decision is None or book is None:
        return _generate(question, [], None, None, generator, opts, base, t0)
    # a model reads the resolved section's parts first, selected for a larger budget than the display
    view = decision if getattr(generator, "verbatim", False) else widened(decision, question, book, PROMPT_SECTION)
    passages = compose.excerpt_passages(view, retrieval, opts.k, book)
    t = triage_for(question, decision, book)
    a = decision.ask
    extra = dict(resolved=[r.to_json() for r in decision.resolved], why=decision.why,
                 triage=t.to_json() if t else None,
                 ask={"parts": list(a.parts), "treatment": a.treatment, "presentation": a.presentation,
                      "population": sorted(a.population.groups)})
    base |= extra
    fixed = {"out_of_scope": compose.out_of_scope_text, "candidates": partial(compose.candidates_text, book=book),
             "refuse": compose.refusal_text}
    if decision.action in fixed:
        outcome = {"refuse": "refused"}.get(decision.action, decision.action)
        # a question the book does not cover gets no "Triage: routine" (it would read as clearance); a danger
        # sign found in it still heads the answer
        shown_t = t if decision.action != "out_of_scope" or (t and t.level != "routine") else None
        text = "\n".join(x for x in (compose.triage_line(shown_t), fixed[decision.action](decision)) if x)
        ans = _fixed(question, decision, passages, text, opts, base, outcome, t)
        ans.notes.append(decision.why)
        ans.timings["answer"] = time.perf_counter() - t0
        return ans
    return _generate(question, passages, decision, t, generator, opts, base, t0)


def _cautions(decision: Decision | None) -> list[str]:
    """The reviewed cautions (ragcds/data/cautions.tsv) on the printed lines an answer draws on, in every format."""
    lines = [b for sel in (decision.selections if decision else ()) for b in sel.blocks]
    found = [(b, caution_for(b.pdf_page, b.text)) for b in lines]
    return [f"ragcds caution on p. {b.printed_page} (not the book's words): {c}" for b, c in found if c]


def _generate(question: str, passages: list[Hit], decision: Decision | None, t: Triage | None,
              generator: Generator, opts: Options, base: dict, t0: float) -> Answer:
    notes = [decision.why] if decision else []
    notes += _cautions(decision)
    treatment = bool(decision and decision.ask.treatment)
    quote = compose.quote_text(decision, passages) if decision and generator.backend != "extractive" else ""
    messages = build_messages(question, passages, opts.format, rag=opts.rag, treatment=treatment)
    messages = fit_messages(messages, bool(getattr(generator, "supports_system", True)))
    request = GenerationRequest(messages=messages, format=opts.format, max_new_tokens=opts.max_new_tokens,
                                temperature=opts.temperature, passages=tuple(passages), question=question,
                                decision=decision, triage=t)
    timings = {"prompt": time.perf_counter() - t0}
    t1 = time.perf_counter()
    raw = generator.generate(request)
    timings["generate"] = time.perf_counter() - t1
    text, removed = (raw, []) if getattr(generator, "verbatim", False) else check_cited_doses(raw, passages)
    if removed:
        notes.append("removed doses not found in a passage the answer cites: " + ", ".join(removed))
    fields, ok, citations = parse_output(text, opts.format, passages)
    repaired = False
    if not ok and opts.format != "prose":
        fixed = repair(text, opts.format)
        if fixed is not None:
            fields, ok, citations = parse_output(fixed, opts.format, passages)
            text, repaired = fixed, ok
            notes.append("the reply did not parse and was repaired (truncated or unconstrained output)")
    if not ok:
        notes.append(f"the reply does not parse as {opts.format}; shown as received")
    quoted_ids = {b.chunk_id for b in (decision.quote if decision else ())}
    if quote:
        _, _, more = parse_output(quote, "prose", passages)
        citations = _merge(citations, more)
    citations = [_mark_quoted(c, quoted_ids) for c in citations]
    bad = sorted({c.n for c in citations if not c.valid})
    if bad:
        notes.append("invalid citations (no such passage was provided): " + ", ".join(f"[{n}]" for n in bad))
    timings["total"] = time.perf_counter() - t0
    outcome = "quoted" if decision and decision.action == "quote" else "answered"
    return Answer(**base, text=text, policy=outcome, passages=passages, fields=fields, parse_ok=ok,
                  citations=citations, timings=timings, quote=quote, notes=notes, repaired=repaired,
                  raw=raw)


def _mark_quoted(c: Citation, quoted_ids: set[str]) -> Citation:
    c.quoted = c.valid and c.chunk_id in quoted_ids
    return c


def _merge(citations: list[Citation], more: list[Citation]) -> list[Citation]:
    seen = {c.n for c in citations}
    return citations + [c for c in more if c.n not in seen and not seen.add(c.n)]  # type: ignore[func-returns-value]


def check_cited_doses(text: str, passages: list[Hit]) -> tuple[str, list[str]]:
    """Remove every dose that does not occur, as the same (number, unit, per) token, in a passage the text
    cites with [n]. A packet or paragraph that cites nothing may carry no dose at all."""
    from ragcds.generate.formats import extract_citations

    cited = [passages[n - 1].chunk.text for n in extract_citations(text) if 1 <= n <= len(passages)]
    return clinical.check_doses(text, cited)


def answer_question(
    question: str,
    *,
    generator: Generator,
    retriever: Source | None = None,
    format: Format = "prose",
    k: int = 5,
    rag: bool = True,
    policy: str = "quote",
    max_new_tokens: int = 256,
    temperature: float = 0.0,
    full: bool = False,
    retrieval: Retrieval | None = None,
) -> Answer:
    """Answer one question from the UCG: retrieve once (or use the given Retrieval), decide, answer."""
    t_start = time.perf_counter()
    q = check_question(question)
    opts = Options(format, k, rag, policy, max_new_tokens, temperature, full)
    opts.check()
    if not rag:
        return answer(q, None, None, generator, opts)
    if retriever is None:
        raise IndexNotFound("answering with passages needs an index — build one with `ragcds ingest "
                            "ucg-2023.pdf` or pass --no-rag")
    t0 = time.perf_counter()
    retrieval = retrieval or retriever.retrieve(q, k=max(RETRIEVE_DEPTH, k))
    t_retrieve = time.perf_counter() - t0
    t0 = time.perf_counter()
    decision = decide_for(q, retrieval, retriever, opts)
    t_decide = time.perf_counter() - t0
    ans = answer(q, retrieval, decision, generator, opts, retriever.book)
    ans.timings = {"retrieve": t_retrieve, "decide": t_decide, **ans.timings,
                   "total": time.perf_counter() - t_start}
    return ans


def answer_to_json(answer: Answer) -> dict:
    """The one serialisation of an Answer: `ask --json`, the audit log and `eval run` records."""
    return {
        "question": answer.question,
        "answer": answer.text,
        "format": answer.format,
        "fields": answer.fields,
        "parse_ok": answer.parse_ok,
        "repaired": answer.repaired,
        "policy": answer.policy,
        "why": answer.why,
        "ask": answer.ask,
        "resolved": answer.resolved,
        "triage": answer.triage,
        "quote": answer.quote,
        "raw": answer.raw,
        "citations": [
            {"n": c.n, "valid": c.valid, "quoted": c.quoted, "chunk_id": c.chunk_id, "section": c.section,
             "title": c.title, "printed_pages": list(c.printed_pages), "pdf_pages": list(c.pdf_pages),
             "label": c.label()}
            for c in answer.citations
        ],
        "passages": [h.to_json() for h in answer.passages],
        "model": answer.model,
        "backend": answer.backend,
        "mode": answer.mode,
        "index_version": answer.index_version,
        "notes": answer.notes,
        "timings": {k: round(v, 4) for k, v in answer.timings.items()},
    }


def answer_record(answer: Answer) -> dict:
    """The answer's one serialisation with passage texts left out (they are in the index version the record
    names, by chunk id): what the audit log and `eval run`'s items.jsonl store."""
    record = answer_to_json(answer)
    record["passages"] = [{k: v for k, v in p.items() if k != "text"} for p in record["passages"]]
    return record
