"""The checked-in CLI reference (docs/cli.md) matches the CLI's help text: help text is documentation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_cli_reference_is_current(tmp_path):
    out = tmp_path / "cli.md"
    subprocess.run(
        [sys.executable, "-m", "typer", "ragcds.cli.main", "utils", "docs", "--name", "ragcds",
         "--title", "ragcds command reference", "--output", str(out)],
        check=True, cwd=REPO, capture_output=True,
    )
    assert out.read_text() == (REPO / "docs" / "cli.md").read_text(), "run: bash scripts/cli_reference.sh"


def test_every_command_has_a_one_line_docstring():
    import typer.main

    from ragcds.cli.main import app

    def walk(cmd, path=""):
        for name, sub in getattr(cmd, "commands", {}).items():
            yield f"{path} {name}".strip(), sub
            yield from walk(sub, f"{path} {name}")

    for name, cmd in walk(typer.main.get_command(app)):
        assert cmd.help and cmd.help.strip(), f"ragcds {name} has no help text"
