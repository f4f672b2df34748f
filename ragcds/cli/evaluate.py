"""`ragcds eval`: run, validate, report and compare evaluations (thin over ragcds.evaluate)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ragcds.cli.common import handle_errors, out
from ragcds.config import DEFAULT_INDEX_DIR

eval_app = typer.Typer(help="Measure retrieval and the RAG uplift on question sets.", no_args_is_help=True)


def _modes(value: str | None, model: str | None) -> tuple[str, ...]:
    if not value:
        return ("closed-book", "rag", "extractive") if model else ("extractive",)
    return tuple(m.strip() for m in value.split(",") if m.strip())


def _remote(model: str | None, backend: str, modes: tuple[str, ...]) -> bool:
    """Whether the model modes talk to a server (the only calls --concurrency overlaps)."""
    from ragcds.evaluate.runner import LLM_MODES

    url = bool(model) and str(model).startswith(("http://", "https://"))
    return bool(LLM_MODES & set(modes)) and (backend == "openai" or (backend == "auto" and url))


@eval_app.command("run")
@handle_errors
def run_cmd(
    questions: Annotated[
        Path, typer.Option("--questions", "-q", help="Question set (JSONL, see docs/evaluation.md).")
    ],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            envvar="RAGCDS_MODEL",
            help="Model for closed-book/rag: smollm2, gemma3-270m, a path or URL.",
        ),
    ] = None,
    backend: Annotated[
        str, typer.Option("--backend", help="Generator backend (auto infers from --model).")
    ] = "auto",
    modes: Annotated[
        str | None,
        typer.Option(
            "--modes",
            help="Comma list of closed-book,rag,extractive "
            "(default: all three with --model, else extractive).",
        ),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="Answer format: prose, xml or array.")] = "prose",
    k: Annotated[int, typer.Option("-k", help="Passages given to the model.")] = 5,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Run folder (default eval/runs/<questions>).")
    ] = None,
    index: Annotated[
        Path, typer.Option("--index", envvar="RAGCDS_INDEX", help="Index directory.", show_default=True)
    ] = DEFAULT_INDEX_DIR,
    limit: Annotated[int | None, typer.Option("--limit", help="Only the first N questions.")] = None,
    policy: Annotated[
        str, typer.Option("--policy", help="Treatment-question policy passed to answering.")
    ] = "quote",
    max_new_tokens: Annotated[
        int, typer.Option("--max-new-tokens", help="Generation budget per answer.")
    ] = 160,
    temperature: Annotated[float, typer.Option("--temperature", help="Sampling temperature.")] = 0.0,
    judge: Annotated[
        str | None,
        typer.Option(
            "--judge", envvar="RAGCDS_JUDGE_URL", help="Optional OpenAI-compatible judge URL (…/v1)."
        ),
    ] = None,
    judge_model: Annotated[
        str, typer.Option("--judge-model", envvar="RAGCDS_JUDGE_MODEL", help="Judge model name.")
    ] = "gpt-4o-mini",
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
    concurrency: Annotated[
        int,
        typer.Option(
            "--concurrency",
            min=1,
            max=64,
            envvar="RAGCDS_CONCURRENCY",
            help="Requests in flight to an OpenAI-compatible --model URL (local backends run one at a time).",
        ),
    ] = 1,
) -> None:
    """Run an evaluation (resumable: rerun the same command to continue)."""
    from ragcds.cli.progress import progress_display
    from ragcds.evaluate.dataset import load_questions
    from ragcds.evaluate.runner import LLM_MODES, RunConfig, run_eval
    from ragcds.files import sha256_file
    from ragcds.retrieve import HybridRetriever

    qs = load_questions(questions, limit)
    mode_list = _modes(modes, model)
    _notes(qs, mode_list, model, backend, concurrency)
    out_dir = out_dir or Path("eval") / "runs" / questions.stem
    config = RunConfig(
        questions=str(questions), questions_sha256=sha256_file(questions), modes=mode_list,
        model=model if LLM_MODES & set(mode_list) else None, backend=backend, format=fmt, k=k, policy=policy,
        max_new_tokens=max_new_tokens, temperature=temperature, judge_model=judge_model if judge else None,
        limit=limit,
    )
    config.check()  # before the index is opened: a bad mode or a missing model fails fast
    retriever = HybridRetriever.open(index)
    config.index_version = retriever.version_id
    judge_obj = _judge(judge, judge_model)

    def generator_for(mode: str):
        from ragcds.generate.backends import load_generator

        return load_generator(model, backend) if mode in LLM_MODES else load_generator(None)

    display, update = progress_display(progress)
    try:
        with display:
            results = run_eval(
                config, qs, retriever, out_dir, generator_for, judge=judge_obj, progress=update,
                concurrency=concurrency,
            )
    except KeyboardInterrupt:
        print(f"interrupted: finished items are kept in {out_dir / 'items.jsonl'}; rerun the same command to "
              "continue", file=sys.stderr)
        raise typer.Exit(130) from None
    _print_summary(results, mode_list, out_dir)


def _notes(qs: list, mode_list: tuple[str, ...], model: str | None, backend: str, concurrency: int) -> None:
    """Say what the run will not use: extra question fields, --concurrency with a local backend."""
    from ragcds.cli.common import console
    from ragcds.evaluate.dataset import extra_fields

    if extra_fields(qs):
        console.print(f"note: question fields not used by the metrics: {', '.join(extra_fields(qs))} (kept in "
                      "items.jsonl under `extra`)")
    if concurrency > 1 and not _remote(model, backend, mode_list):
        console.print(f"note: --concurrency {concurrency} applies to an OpenAI-compatible server (--model "
                      "http://HOST:PORT/v1); local backends run one item at a time")


def _judge(url: str | None, model: str):
    if not url:
        return None
    from ragcds.evaluate.judge import Judge

    judge = Judge(url, model)
    judge.check()
    return judge


def _print_summary(results: dict, mode_list: tuple[str, ...], out_dir: Path) -> None:
    r = results["retrieval"]["overall"]
    out.print(f"{results['n_questions']} questions; recall@5 {r['recall@5']['mean']}, MRR {r['mrr']['mean']}")
    for m in mode_list:
        s = results["modes"][m]
        out.print(
            f"{m}: key-fact recall {s['key_fact_recall']['mean']}, unsupported "
            f"{s['unsupported_rate']['mean']}, errors {results['errors'][m]}"
        )
    out.print(f"report: {out_dir / 'report.md'}   compare: ragcds eval compare {out_dir} OTHER_RUN")


@eval_app.command("validate")
@handle_errors
def validate_cmd(file: Annotated[Path, typer.Argument(help="Question set (JSONL).")]) -> None:
    """Check a question set against the schema; one line per problem."""
    from ragcds.evaluate.dataset import extra_fields, load_questions, validate_file

    errs = validate_file(file)
    for e in errs:
        print(e)
    if errs:
        raise typer.Exit(1)
    qs = load_questions(file)
    extra = extra_fields(qs)
    note = f"; fields not scored (kept in run records): {', '.join(extra)}" if extra else ""
    out.print(f"{file}: {len(qs)} questions, valid{note}")


@eval_app.command("report")
@handle_errors
def report_cmd(
    run: Annotated[Path, typer.Argument(help="Run folder (holds results.json / items.jsonl).")],
    rescore: Annotated[
        bool, typer.Option("--rescore", help="Re-score items.jsonl with the current metric rules first.")
    ] = False,
    index: Annotated[
        Path,
        typer.Option(
            "--index", envvar="RAGCDS_INDEX", help="Index holding the run's version (for --rescore).",
            show_default=True,
        ),
    ] = DEFAULT_INDEX_DIR,
    recompute: Annotated[
        bool, typer.Option("--recompute", help="Re-aggregate results.json from items.jsonl.")
    ] = False,
) -> None:
    """Regenerate report.md and the plots of a run from results.json."""
    from ragcds.errors import RagcdsError
    from ragcds.evaluate.report import write_report
    from ragcds.evaluate.runner import finalize
    from ragcds.evaluate.runner import rescore as rescore_items

    if rescore:
        out.print(f"re-scored {rescore_items(run, index)} items")
    if rescore or recompute or not (run / "results.json").exists():
        if not (run / "config.json").exists():
            raise RagcdsError(f"{run} is not a run folder (no config.json); make one with `ragcds eval run`")
        finalize(run)
    path = write_report(run)
    out.print(f"wrote {path}")


@eval_app.command("compare")
@handle_errors
def compare_cmd(
    run_a: Annotated[Path, typer.Argument(help="Baseline run folder (A).")],
    run_b: Annotated[Path, typer.Argument(help="Candidate run folder (B).")],
) -> None:
    """Print B − A per metric with paired-bootstrap CIs; flag significant changes."""
    from ragcds.evaluate.compare import compare_runs, verdict

    out.print(f"{'section':<12} {'metric':<24} {'B − A':>7}  {'95% CI':<17} {'n':>4}  significant")
    for section, deltas in compare_runs(run_a, run_b).items():
        for key, d in deltas.items():
            v = verdict(d)
            ci = f"[{d['lo']:+.3f}, {d['hi']:+.3f}]"
            flag = f"[bold]YES ({v})[/bold]" if v else "no"
            out.print(f"{section:<12} {key:<24} {d['delta']:>+7.3f}  {ci:<17} {d['n']:>4}  {flag}")


def register(app: typer.Typer) -> None:
    """Add the `eval` command group to the root app."""
    app.add_typer(eval_app, name="eval")
