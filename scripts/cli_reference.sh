#!/usr/bin/env bash
# Regenerates docs/cli.md from the CLI's own help text (tests/test_cli_reference.py checks it is current).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m typer ragcds.cli.main utils docs --name ragcds --title "ragcds command reference" --output docs/cli.md
