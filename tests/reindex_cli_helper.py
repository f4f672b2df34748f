"""Shared by the re-indexing tests: the two test editions, and a CLI entry point for subprocesses.

As a program it runs the ragcds CLI with the test FakeEmbedder registered as ``fake:DIM`` (the kill and
concurrency tests need a real process to SIGKILL)::

    python -m tests.reindex_cli_helper index update NEW.pdf --index DIR --embedder fake:64
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ragcds.index.embedders import register_embedder
from tests.fakes import FakeEmbedder
from tests.pdfgen import DEFAULT_SECTIONS, SectionSpec, edit_sections, make_guideline_pdf

REPO = Path(__file__).resolve().parent.parent
OLD_DOSE = "- Give ciprofloxacin 500 mg every 8 hours for 5 days"
NEW_DOSE = "- Give ciprofloxacin 750 mg every 8 hours for 5 days"
PLAGUE = SectionSpec(
    "2.1.4",
    "Plague",
    (
        "Plague is a flea-borne zoonosis.",
        "Management",
        "- Give gentamicin 5 mg/kg once daily for 10 days",
    ),
)


def second_edition() -> tuple[SectionSpec, ...]:
    """Edition 2: a changed dose (2.1.1 Anthrax), a removed section (1.2.1 Snakebites), a new one (2.1.4)."""
    anthrax = next(s for s in DEFAULT_SECTIONS if s.number == "2.1.1")
    return edit_sections(
        DEFAULT_SECTIONS,
        replace_lines={"2.1.1": tuple(NEW_DOSE if line == OLD_DOSE else line for line in anthrax.lines)},
        remove=("1.2.1",),
        add_after={"2.1.3": PLAGUE},
    )


def make_editions(folder: Path) -> tuple[Path, Path]:
    """(edition 1 PDF, edition 2 PDF) in ``folder``."""
    return make_guideline_pdf(folder / "ucg-ed1.pdf"), make_guideline_pdf(
        folder / "ucg-ed2.pdf", second_edition()
    )


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "tests.reindex_cli_helper", *args]


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGCDS_TEST_PAUSE")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def main() -> None:
    register_embedder("fake", lambda arg: FakeEmbedder(int(arg or 64)))
    from ragcds.cli.main import main as cli_main

    sys.argv[0] = "ragcds"
    cli_main()


if __name__ == "__main__":
    main()
