"""`ragcds ask` and `ragcds logs`: cited answers from the UCG 2023, and the audit log of past answers."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape

from ragcds.cli.common import IndexOpt, SearchEmbedderOpt, console, handle_errors, open_retriever, out
from ragcds.config import DEFAULT_INDEX_DIR
from ragcds.generate.base import FORMATS, Answer


def _citation(r: dict) -> str:
    pages = [p for p in r.get("printed_pages", []) if p]
    span = "" if not pages else f", p. {pages[0]}" if len(pages) == 1 else f", pp. {pages[0]}–{pages[-1]}"
    return f"§{r['section']} {r['title']}{span}"


def _choice(value: str, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise typer.BadParameter(f"{what} must be one of {', '.join(choices)}")
    return value


def print_answer(answer: Answer) -> None:
    if answer.resolved and answer.format != "prose" or answer.backend != "extractive" and answer.resolved:
        about = "; ".join(_citation(r) for r in answer.resolved)
        out.print(f"[bold]About:[/bold] {escape(about)}")
    out.print(escape(answer.text))
    if answer.fields:
        for name, value in answer.fields.items():
            shown = "; ".join(value) if isinstance(value, list) else value
            out.print(f"  {name}: {escape(str(shown))}")
    if answer.quote:
        out.print("")
        out.print(escape(answer.quote))
    t = answer.triage
    if t and not answer.text.lstrip().startswith("Triage:") and "\nTriage:" not in answer.text:
        why = t["because"][0] if t["because"] else None
        out.print(f"Triage: {t['level'].upper()}" + (f" — {escape(why['finding'])} ({escape(why['citation'])})"
                                                     if why else " (no danger sign of the guideline found)"))
    if answer.citations:
        out.print("\nSources:")
        for c in sorted(answer.citations, key=lambda c: c.n):
            out.print(("  " if c.valid else "  [red]") + escape(c.label()) + ("" if c.valid else "[/red]"))
    for note in answer.notes:
        out.print(f"[dim]note: {escape(note)}[/dim]")
    ms = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in answer.timings.items())
    out.print(f"[dim]{answer.backend}:{escape(answer.model)} · {answer.mode} · {answer.policy} · {ms}[/dim]")


@handle_errors
def ask(
    question: Annotated[str, typer.Argument(help="The clinical question.", show_default=False)],
    format: Annotated[
        str, typer.Option("--format", "-f", help="prose, xml (triage packet) or array.")
    ] = "prose",
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            envvar="RAGCDS_MODEL",
            help="HF folder, .gguf file, http(s):// server URL, or smollm2 / gemma3-270m.",
        ),
    ] = None,
    backend: Annotated[
        str, typer.Option(help="auto, transformers, openai, llamacpp or extractive.")
    ] = "auto",
    k: Annotated[int, typer.Option("-k", "--top", min=1, max=20, help="Passages given to the model.")] = 5,
    json_out: Annotated[bool, typer.Option("--json", help="Print the answer record as JSON.")] = False,
    no_rag: Annotated[
        bool, typer.Option("--no-rag", help="Ask the model closed-book (no passages).")
    ] = False,
    policy: Annotated[
        str,
        typer.Option(
            envvar="RAGCDS_POLICY", help="Treatment/dosing questions: quote the UCG verbatim, or refuse."
        ),
    ] = "quote",
    index: IndexOpt = DEFAULT_INDEX_DIR,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Generation budget in tokens.")] = 256,
    temperature: Annotated[float, typer.Option(min=0.0, help="0 = greedy.")] = 0.0,
    model_name: Annotated[
        str | None,
        typer.Option(envvar="RAGCDS_OPENAI_MODEL", help="Model name sent to an OpenAI-compatible server."),
    ] = None,
    no_log: Annotated[
        bool, typer.Option("--no-log", help="Do not write the audit log (or RAGCDS_LOG=0).")
    ] = False,
    embedder: SearchEmbedderOpt = None,
    full: Annotated[
        bool, typer.Option("--full", help="Show the whole part of the section (default: within 800 characters).")
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option(
            envvar="RAGCDS_TIMEOUT",
            min=1.0,
            help="Seconds to wait for an OpenAI-compatible server's reply [default: 120; connecting: 10].",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Answer a clinical question from the UCG 2023, with citations."""
    from ragcds.generate.answer import answer_question, answer_to_json
    from ragcds.generate.backends import backend_names, load_generator
    from ragcds.retrieve import check_question

    check_question(question)
    _choice(format, FORMATS, "--format")
    _choice(backend, ("auto", *backend_names()), "--backend")
    _choice(policy, ("quote", "refuse"), "--policy")
    options: dict[str, object] = {"model_name": model_name} if model_name else {}
    if timeout is not None:
        options["timeout"] = timeout
    generator = load_generator(model, backend, **options)
    retriever = None if no_rag else open_retriever(index, embedder)
    answer = answer_question(
        question,
        generator=generator,
        retriever=retriever,
        format=format,  # type: ignore[arg-type]
        k=k,
        rag=not no_rag,
        policy=policy,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        full=full,
    )
    if json_out:
        out.print_json(json.dumps(answer_to_json(answer), ensure_ascii=False))
    else:
        print_answer(answer)
    if not no_log:
        log_or_say_why(answer)


def log_or_say_why(answer: Answer) -> None:
    """Write the audit log; when it cannot be written the answer stays shown (exit 0) and one stderr line
    says it was not logged, why, and the fix."""
    from ragcds import audit
    from ragcds.errors import AuditLogError

    try:
        audit.log_answer(answer)
    except AuditLogError as exc:
        console.print(f"warning: this answer was NOT logged to the audit log: {exc}", markup=False, soft_wrap=True)


@handle_errors
def logs(
    n: Annotated[int, typer.Option("-n", min=1, help="How many recent answers.")] = 20,
    json_out: Annotated[bool, typer.Option("--json", help="Print the log rows as JSON.")] = False,
) -> None:
    """List recent answers from the audit log (RAGCDS_HOME/logs.db)."""
    from ragcds import audit

    rows = audit.recent(n)
    if json_out:
        out.print(audit.dumps_safe(rows), markup=False, highlight=False)
        return
    if not rows:
        out.print(f'no answers logged yet in {audit.db_path()} — try: ragcds ask "signs of severe malaria"')
        return
    safe = audit.escape_controls  # stored text may carry terminal escape sequences
    for r in rows:
        pages = ",".join(p for pages in r["pages"] for p in pages)
        out.print(
            safe(f"#{r['id']} {r['ts']} {r['backend']}:{r['model']} {r['format']} {r['policy']} "
                 f"{r['latency_ms']:.0f} ms pages {pages}"),
            markup=False,
        )
        out.print(f"  Q: {safe(r['question'][:200])}", markup=False)
        out.print(f"  A: {safe(r['answer'][:200].replace(chr(10), ' '))}", markup=False)


def register(app: typer.Typer) -> None:
    """Add `ask` and `logs` to the root app."""
    app.command()(ask)
    app.command()(logs)
