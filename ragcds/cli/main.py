"""The `ragcds` command. Each command group lives in its own module and registers itself here."""

from __future__ import annotations

import importlib
import logging
import os

import typer

from ragcds import __version__

COMMAND_MODULES = (
    "ragcds.cli.ingest_search",  # ingest, search
    "ragcds.cli.ask",  # ask, logs
    "ragcds.cli.evaluate",  # eval run / compare / report
    "ragcds.cli.index_admin",  # index update / diff / versions / activate / gc
    "ragcds.cli.serve",  # serve
)

app = typer.Typer(
    name="ragcds",
    help="Offline, cited answers from the Uganda Clinical Guidelines 2023 (decision support, not a prescriber).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ragcds {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """ragcds: retrieval-augmented clinical decision support over the UCG 2023."""


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.getLogger("transformers").setLevel(logging.ERROR)
    app()


if __name__ == "__main__":
    main()
