"""Helpers shared by the CLI modules: error tiers, console, index option."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from ragcds.config import debug_enabled
from ragcds.errors import RagcdsError

console = Console(stderr=True, highlight=False)
out = Console(highlight=False, soft_wrap=True)

F = TypeVar("F", bound=Callable[..., object])

IndexOpt = Annotated[
    Path,
    typer.Option("--index", envvar="RAGCDS_INDEX", help="Index directory (built by `ragcds ingest`).",
                 show_default=True),
]




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


SearchEmbedderOpt = Annotated[
    str | None,
    typer.Option(
        "--embedder",
        envvar="RAGCDS_EMBEDDER",
        help="Embedder the index was built with (default: the one its manifest names); pass its folder if it "
        "moved since the build.",
        show_default=False,
    ),
]


def open_retriever(index: Path, embedder_ref: str | None = None):
    """The live version's HybridRetriever with the given embedder, else the manifest's; when that one cannot
    be loaded (its folder moved), the error says how to point at it."""
    from ragcds.errors import ModelNotFound
    from ragcds.index import store
    from ragcds.index.embedders import load_embedder
    from ragcds.retrieve import HybridRetriever

    if embedder_ref:
        return HybridRetriever.open(index, load_embedder(embedder_ref))
    try:
        return HybridRetriever.open(index)
    except ModelNotFound as exc:
        built = store.read_manifest(store.resolve_version_dir(index)).embedder.ref
        raise ModelNotFound(
            f"the index {index} was built with embedder {built!r}, which cannot be loaded here "
            f"({str(exc).split(' — ')[0]}) — point at its folder: --embedder PATH (or RAGCDS_EMBEDDER=PATH)"
        ) from exc
