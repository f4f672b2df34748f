"""The one progress display of the CLI (ingest, index update, eval run): a live bar per stage on a
terminal, one line per finished stage otherwise (logs, CI). Library code only takes a callback."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ragcds.cli.common import console

STAGE_LABELS = {
    "read": "Reading pages",
    "chunk": "Sections → chunks",
    "embed": "Embedding chunks",
    "eval": "Evaluating",
}
Update = Callable[..., None]  # (stage, done, total, detail="")


def progress_display(enabled: bool = True) -> tuple[Progress, Update]:
    """The display (use it as a context manager) and its ``update(stage, done, total, detail="")``."""
    live = enabled and (console.is_terminal or bool(os.environ.get("RAGCDS_PROGRESS")))
    progress = Progress(
        TextColumn("{task.description:<20}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=False, disable=not live,
    )
    tasks: dict[str, int] = {}
    started: dict[str, float] = {}

    def update(stage: str, done: int, total: int, detail: str = "") -> None:
        label = STAGE_LABELS.get(stage, stage)
        if stage not in tasks:
            tasks[stage] = progress.add_task(label, total=total or 1)
            started[stage] = time.perf_counter()
        description = f"{label} {detail}" if detail else label
        progress.update(tasks[stage], completed=done if total else 1, total=total or 1, description=description)
        if enabled and not live and done >= total:
            console.print(f"{label}: {done}/{total} done in {time.perf_counter() - started[stage]:.1f}s")

    return progress, update
