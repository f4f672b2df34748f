"""`ragcds ingest` and `ragcds search`."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ragcds.cli.common import IndexOpt, SearchEmbedderOpt, console, handle_errors, open_retriever, out
from ragcds.cli.index_admin import gate_table, print_outcome, run_update
from ragcds.config import DEFAULT_INDEX_DIR
from ragcds.errors import BadQuestionFile, InputPDFError
from ragcds.index.build import BuildReport
from ragcds.retrieve import MODES, Hit, HybridRetriever, Retrieval


def print_build_summary(report: BuildReport, elapsed: float, gates_s: float = 0.0) -> None:
    table = Table(title=f"Index version {report.version_id}", show_header=False, title_justify="left")
    table.add_row("pages", str(report.pages))
    table.add_row("sections", str(report.sections))
    table.add_row("chunks", f"{report.chunks} ({report.embedded} embedded, {report.reused} reused)")
    coverage = f"{report.toc_found}/{report.toc_entries} entries found as body sections ({report.toc_coverage:.1%})"
    table.add_row("contents coverage", coverage)
    mapped = sum(report.clean.get("glyphs_mapped", {}).values())
    unmapped = sum(report.clean.get("unmapped_glyphs", {}).values())
    table.add_row("glyphs", f"{mapped} symbol-font glyphs mapped, {unmapped} unmapped (shown as \ufffd)")
    stages = " · ".join(f"{k} {v:.1f}s" for k, v in {**report.stage_seconds, "gates": gates_s}.items())
    table.add_row("time", f"{stages} · total {elapsed:.1f}s")
    console.print(table)
    if report.toc_missing:
        shown = report.toc_missing[:15]
        more = f" (+{len(report.toc_missing) - len(shown)} more)" if len(report.toc_missing) > len(shown) else ""
        console.print("contents entries not found in the body: " + "; ".join(shown) + more)


@handle_errors
def ingest(
    pdf: Annotated[Path | None, typer.Argument(help="The guideline PDF (default: $UCG_PDF).",
                                               show_default=False)] = None,
    index: IndexOpt = DEFAULT_INDEX_DIR,
    embedder: Annotated[str, typer.Option(
        envvar="RAGCDS_EMBEDDER", help="'default' (packaged all-MiniLM-L6-v2) or a local sentence-transformers folder.",
    )] = "default",
    json_out: Annotated[bool, typer.Option("--json", help="Print the build report as JSON.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Go live even if a gate fails (needs --reason).")] = False,
    reason: Annotated[str, typer.Option("--reason", help="Why a forced version may go live (recorded).")] = "",
) -> None:
    """Build (or rebuild) the hybrid index from a guideline PDF; it goes live only if the validation gates pass."""
    if pdf is None:
        env = os.environ.get("UCG_PDF")
        if not env:
            raise InputPDFError("no PDF given — pass the path (ragcds ingest PATH.pdf) or set UCG_PDF")
        pdf = Path(env)
    start = time.perf_counter()
    rep = run_update(pdf, index, embedder, force, reason, event="ingest")
    build = dataclasses.replace(rep.build, activated=rep.activated)
    if json_out:
        extra = {"previous_version": rep.previous_version, "forced": rep.forced, "gates": rep.gates.to_dict()}
        out.print_json(json.dumps({**build.to_dict(), **extra}))
    else:
        print_build_summary(build, time.perf_counter() - start, rep.seconds.get("gates", 0.0))
        console.print(gate_table(rep.gates))
        print_outcome(rep)
    if not rep.activated:
        raise typer.Exit(1)


def snippet(text: str, width: int = 240) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1].rsplit(" ", 1)[0] + "…"


def print_hits(question: str, hits: list[Hit]) -> None:
    out.print(f"[bold]{question}[/bold]")
    if not hits:
        out.print("  no passages matched")
    for h in hits:
        out.print(f"\n[bold]{h.rank}.[/bold] {h.citation()}  [dim](score {h.score:.4f}, {h.chunk.chunk_id})[/dim]")
        out.print(f"   {snippet(h.chunk.text)}", markup=False)


def sections_json(retriever: HybridRetriever, r: Retrieval, k: int) -> list[dict]:
    """The ranked sections of one retrieval: section, title, printed pages, score, rank of its best passage."""
    return [
        {"rank": i, "section": s.section, "title": s.title, "printed_pages": list(retriever.printed_pages(s.section)),
         "score": round(s.score, 6), "best_rank": s.best_rank}
        for i, s in enumerate(r.sections[:k], 1)
    ]


def print_sections(question: str, rows: list[dict]) -> None:
    out.print(f"[bold]{question}[/bold]")
    if not rows:
        out.print("  no sections matched")
    for row in rows:
        pages = [p for p in row["printed_pages"] if p]
        span = "" if not pages else f", p. {pages[0]}" if len(pages) == 1 else f", pp. {pages[0]}–{pages[-1]}"
        out.print(f"[bold]{row['rank']}.[/bold] §{row['section']} {row['title']}{span}  "
                  f"[dim](score {row['score']:.4f}, best passage #{row['best_rank']})[/dim]", markup=True)


def read_questions(path: Path) -> list[tuple[str, str]]:
    if not path.exists():
        raise BadQuestionFile(f"questions file not found: {path}")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadQuestionFile(f"{path}:{n}: not JSON ({exc.msg}) — one JSON object per line") from exc
        if not isinstance(obj, dict) or "question" not in obj or "id" not in obj:
            raise BadQuestionFile(f"{path}:{n}: needs an object with 'id' and 'question'")
        rows.append((str(obj["id"]), str(obj["question"])))
    return rows


@handle_errors
def search(
    question: Annotated[str | None, typer.Argument(help="The question.", show_default=False)] = None,
    k: Annotated[int, typer.Option("-k", "--top", min=1, max=100, help="Passages to return.")] = 5,
    mode: Annotated[str, typer.Option(help="hybrid (RRF of dense + BM25), dense or bm25.")] = "hybrid",
    json_out: Annotated[bool, typer.Option("--json",
                                           help="JSON output (array of hits; JSON lines in batch mode).")] = False,
    questions: Annotated[Path | None, typer.Option("--questions",
                                                   help="JSONL file of {id, question}: batch mode.")] = None,
    sections: Annotated[bool, typer.Option("--sections",
                                           help="List the ranked sections (section, title, printed pages, "
                                                "score) instead of passages.")] = False,
    index: IndexOpt = DEFAULT_INDEX_DIR,
    embedder: SearchEmbedderOpt = None,
) -> None:
    """Search the guideline: passages with section, title and printed page."""
    if mode not in MODES:
        raise typer.BadParameter(f"choose one of {', '.join(MODES)}", param_hint="--mode")
    batch = read_questions(questions) if questions else None
    if batch is None:
        from ragcds.retrieve import check_question

        check_question(question or "")
    retriever = open_retriever(index, embedder)
    if sections:
        _search_sections(retriever, batch or [("", question or "")], k, mode, json_out, batch is not None)
        return
    if batch is not None:
        results = retriever.search_many([q for _, q in batch], k=k, mode=mode)
        for (qid, q), hits in zip(batch, results, strict=True):
            if json_out:
                row = {"id": qid, "hits": [h.to_json() for h in hits]}
                sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
            else:
                out.print(f"\n[dim]{qid}[/dim]")
                print_hits(q, hits)
        return
    hits = retriever.search(question or "", k=k, mode=mode)
    if json_out:
        sys.stdout.write(json.dumps([h.to_json() for h in hits], ensure_ascii=False, indent=1) + "\n")
    else:
        print_hits(question or "", hits)


def _search_sections(retriever: HybridRetriever, batch: list[tuple[str, str]], k: int, mode: str,
                     json_out: bool, is_batch: bool) -> None:
    results = retriever.retrieve_many([q for _, q in batch], k=k, mode=mode)
    for (qid, q), r in zip(batch, results, strict=True):
        rows = sections_json(retriever, r, k)
        if json_out and is_batch:
            sys.stdout.write(json.dumps({"id": qid, "sections": rows}, ensure_ascii=False) + "\n")
        elif json_out:
            sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=1) + "\n")
        else:
            if is_batch:
                out.print(f"\n[dim]{qid}[/dim]")
            print_sections(q, rows)


def register(app: typer.Typer) -> None:
    app.command()(ingest)
    app.command()(search)
