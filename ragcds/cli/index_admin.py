"""`ragcds index ...`: gated re-indexing (update), edition diffs, versions, rollback (activate) and gc."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ragcds.cli.common import IndexOpt, console, handle_errors, out
from ragcds.cli.progress import progress_display
from ragcds.config import DEFAULT_INDEX_DIR, Settings
from ragcds.index import versions
from ragcds.index.diff import diff_refs, to_json, to_markdown
from ragcds.index.gates import GateReport
from ragcds.index.update import UpdateReport, update_index
from ragcds.ingest.pdf import check_pdf_file

index_app = typer.Typer(
    help="Maintain the index: gated updates, diffs, versions, rollback, cleanup.", no_args_is_help=True
)

EmbedderOpt = Annotated[
    str,
    typer.Option(
        envvar="RAGCDS_EMBEDDER",
        help="'default' (packaged all-MiniLM-L6-v2) or a local sentence-transformers folder; must match "
        "the live "
        "version's embedder for vectors to be reused.",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def gate_table(report: GateReport) -> Table:
    table = Table(
        title="Validation gates" + (f" (vs {report.previous})" if report.previous else ""),
        title_justify="left",
    )
    for col in ("gate", "result", "new version", "threshold", "detail"):
        table.add_column(col)
    for r in report.results:
        detail = r.detail + ("; e.g. " + " | ".join(r.examples[:3]) if r.examples else "")
        table.add_row(
            r.name,
            "[green]pass[/green]" if r.passed else "[bold red]FAIL[/bold red]",
            r.value,
            r.threshold,
            detail,
        )
    return table


def print_update(rep: UpdateReport, elapsed: float) -> None:
    c = rep.counts
    table = Table(
        title=f"Update {rep.previous_version or '(none)'} → {rep.new_version}",
        show_header=False,
        title_justify="left",
    )
    table.add_row(
        "chunks",
        f"{rep.build.chunks}: {c.unchanged} unchanged, {c.moved} moved, {c.changed} changed, "
        f"{c.added} added, {c.removed} removed",
    )
    table.add_row("embedding", f"{rep.build.embedded} embedded, {rep.build.reused} reused")
    table.add_row(
        "page text",
        f"{rep.page_cache.get('misses', 0)} pages extracted, {rep.page_cache.get('hits', 0)} "
        "reused from the page cache",
    )
    table.add_row(
        "sections touched",
        ", ".join(c.changed_sections[:12])
        + (f" (+{len(c.changed_sections) - 12} more)" if len(c.changed_sections) > 12 else ""),
    )
    stages = {**rep.build.stage_seconds, **{k: v for k, v in rep.seconds.items() if k != "build"}}
    table.add_row("time", " · ".join(f"{k} {v:.1f}s" for k, v in stages.items()) + f" · total {elapsed:.1f}s")
    console.print(table)
    console.print(gate_table(rep.gates))
    print_outcome(rep)


def print_outcome(rep: UpdateReport) -> None:
    """What went live (with the rollback and next commands), or why the new version was blocked."""
    idx = rep.index_dir
    if rep.activated and rep.forced:
        console.print(
            f"[yellow]forced live despite failed gates ({', '.join(rep.gates.failed)}): {rep.reason}[/yellow]"
        )
    if rep.activated:
        console.print(
            f"live version: {rep.new_version} (rollback: ragcds index activate {rep.previous_version} "
            f"--index {idx})"
            if rep.previous_version
            else f"live version: {rep.new_version}"
        )
        console.print(
            f"see what changed: ragcds index diff {idx}@{rep.previous_version} {idx}@{rep.new_version}"
            if rep.previous_version
            else f'next: ragcds search "signs of severe malaria in children" --index {idx}',
            soft_wrap=True,
        )
    else:
        console.print(
            f"[bold red]blocked:[/bold red] gate(s) {', '.join(rep.gates.failed)} failed; the live version "
            f"stays {rep.previous_version or '(none)'}. New version {rep.new_version} is kept inactive.\n"
            f"inspect: ragcds index diff {idx} {idx}@{rep.new_version}\n"
            f'activate anyway: ragcds index activate {rep.new_version} --force --reason "..." --index {idx}',
            soft_wrap=True,
        )


def run_update(pdf: Path, index: Path, embedder: str, force: bool, reason: str, event: str = "update") -> UpdateReport:
    """The gated update behind `ragcds ingest` and `ragcds index update`: the PDF and --force/--reason are
    checked before the embedder loads; progress on the CLI's one display."""
    from ragcds.index.embedders import load_embedder

    check_pdf_file(pdf)
    versions.require_reason(force, reason)
    emb = load_embedder(embedder)
    display, update = progress_display()
    with display:
        return update_index(pdf, index, emb, embedder, Settings(), progress=update, force=force, reason=reason,
                            event=event)


@index_app.command()
@handle_errors
def update(
    pdf: Annotated[
        Path, typer.Argument(help="The new guideline PDF (errata or new edition).", show_default=False)
    ],
    index: IndexOpt = DEFAULT_INDEX_DIR,
    embedder: EmbedderOpt = "default",
    force: Annotated[
        bool, typer.Option("--force", help="Go live even if a gate fails (needs --reason).")
    ] = False,
    reason: Annotated[
        str, typer.Option("--reason", help="Why a forced version may go live (recorded).")
    ] = "",
    json_out: JsonOpt = False,
) -> None:
    """Re-index from a new PDF: embed only changed chunks, run the validation gates, then go live."""
    start = time.perf_counter()
    rep = run_update(pdf, index, embedder, force, reason)
    if json_out:
        sys.stdout.write(json.dumps(rep.to_dict(), ensure_ascii=False, indent=1) + "\n")
    else:
        print_update(rep, time.perf_counter() - start)
    if not rep.activated:
        raise typer.Exit(1)


@index_app.command()
@handle_errors
def diff(
    old: Annotated[
        str, typer.Argument(help="Old edition: a PDF, an index dir (CURRENT), a version dir or DIR@ID.")
    ],
    new: Annotated[str, typer.Argument(help="New edition, same forms as OLD.")],
    json_out: JsonOpt = False,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the report to this file.")] = None,
) -> None:
    """Show sections added/removed/changed and, first, every changed line with numbers or doses."""
    rep = diff_refs(old, new)
    text = to_json(rep) + "\n" if json_out else to_markdown(rep)
    if out_file:
        out_file.write_text(text, encoding="utf-8")
        console.print(
            f"wrote {out_file}: {len(rep.numbers)} changed number lines, {len(rep.changed)} changed, "
            f"{len(rep.added)} added, {len(rep.removed)} removed sections"
        )
    else:
        sys.stdout.write(text)


@index_app.command("versions")
@handle_errors
def list_versions(index: IndexOpt = DEFAULT_INDEX_DIR, json_out: JsonOpt = False) -> None:
    """List index versions: id, build time, source, chunks, gate status; the live one is marked."""
    rows = versions.version_rows(index)
    if json_out:
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=1) + "\n")
        return
    if not rows:
        console.print(f"no versions in {index} — build one: ragcds ingest PDF --index {index}")
        return
    table = Table(title=f"Index versions in {index}", title_justify="left")
    for col in ("", "version", "built", "source", "sha256", "chunks", "gates"):
        table.add_column(col, no_wrap=col in ("version", "gates"), min_width=24 if col == "version" else None)
    for r in rows:
        table.add_row(
            "[bold green]live[/bold green]" if r["live"] else "",
            r["version_id"],
            r["built_at"],
            r["source_file"],
            r["source_sha256"][:12],
            str(r["chunks"]),
            r["gates"],
        )
    out.print(table)


@index_app.command()
@handle_errors
def activate(
    version_id: Annotated[str, typer.Argument(help="Version id (see: ragcds index versions).")],
    index: IndexOpt = DEFAULT_INDEX_DIR,
    force: Annotated[
        bool, typer.Option("--force", help="Activate a version whose gates failed or were not run (needs --reason).")
    ] = False,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in history.jsonl).")] = "",
    embedder: Annotated[
        str | None,
        typer.Option(
            envvar="RAGCDS_EMBEDDER",
            help="For a version never gated: the embedder its gates use (default: the one it was built with).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Make a complete version live (rollback); a version never gated is gated first; failed ones need --force."""
    from ragcds.index.embedders import load_embedder

    versions.require_reason(force, reason)
    row = versions.activate(
        index, version_id, force=force, reason=reason, embedder=load_embedder(embedder) if embedder else None
    )
    if row.get("gate_report") is not None:
        console.print(f"version {row['to']} had no gate record; its gates ran now:")
        console.print(gate_table(row["gate_report"]))
    note = f" (forced: {reason})" if row.get("forced") else ""
    console.print(f"live version: {row['to']} (was {row['from']}){note}")


@index_app.command()
@handle_errors
def verify(
    index: IndexOpt = DEFAULT_INDEX_DIR,
    all_versions: Annotated[bool, typer.Option("--all", help="Check every version, not only the live one.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Check index files against the sha256 recorded in their manifest; exit 1 if any differs."""
    res = versions.verify(index, all_versions=all_versions)
    if json_out:
        sys.stdout.write(json.dumps(res, ensure_ascii=False, indent=1) + "\n")
    else:
        for r in res["versions"]:
            state = "ok" if not r["problems"] else "DAMAGED: " + "; ".join(r["problems"][:5])
            mark = "live " if r["live"] else "     "
            out.print(f"{mark}{r['version_id']}  {r['files']} files  {state}", markup=False)
    if res["hint"]:
        console.print(f"error: {res['hint']}", markup=False, soft_wrap=True)
    if not res["ok"]:
        raise typer.Exit(1)


@index_app.command()
@handle_errors
def gc(
    keep: Annotated[
        int, typer.Option("--keep", min=1, help="Newest complete versions to keep (plus the live one).")
    ] = 3,
    index: IndexOpt = DEFAULT_INDEX_DIR,
    json_out: JsonOpt = False,
) -> None:
    """Delete old versions (never the live one) and leftovers of interrupted builds."""
    res = versions.gc(index, keep)
    if json_out:
        sys.stdout.write(json.dumps(res) + "\n")
        return
    console.print(
        f"removed {len(res['removed'])} version(s)"
        f"{': ' + ', '.join(res['removed']) if res['removed'] else ''}; "
        f"{res['temps_removed']} stale build folder(s), {len(res['incomplete_removed'])} incomplete; "
        f"kept {', '.join(res['kept'])}"
    )


def register(app: typer.Typer) -> None:
    """Add the `index` command group to the root app."""
    app.add_typer(index_app, name="index")
