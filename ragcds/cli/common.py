"""Helpers shared by the CLI modules: error tiers, console, index option."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from ragcds.config import debug_enabled, default_index_dir
from ragcds.errors import RagcdsError

console = Console(stderr=True, highlight=False)
out = Console(highlight=False, soft_wrap=True)

F = TypeVar("F", bound=Callable[..., object])

IndexOpt = Annotated[
    Path,
    typer.Option("--index", envvar="RAGCDS_INDEX", help="Index directory (built by `ragcds ingest`).",
                 show_default=True),
]


DEFAULT_INDEX = Path("index")  # overridden by --index or RAGCDS_INDEX


def default_index() -> Path:
    return default_index_dir()


def fail(message: str, code: int = 1) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def handle_errors(fn: F) -> F:
    """Expected failures: one line naming the fix, exit 1. Unexpected: one line, exit 2 (traceback with
    RAGCDS_DEBUG=1)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except RagcdsError as exc:
            if debug_enabled():
                raise
            fail(str(exc), 1)
        except KeyboardInterrupt:
            fail("interrupted; nothing was changed", 130)
        except Exception as exc:  # noqa: BLE001 - the second error tier
            if debug_enabled():
                raise
            fail(f"unexpected {type(exc).__name__}: {exc} (rerun with RAGCDS_DEBUG=1 for the traceback)", 2)

    return wrapper  # type: ignore[return-value]
