"""`index diff`: exactly the changed sections, a unified diff per section, and the changed dose listed
with its section and printed page — for two PDFs, two index versions, or one of each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragcds.cli.main import app
from ragcds.index import store
from ragcds.index.build import build_index
from ragcds.index.diff import diff_refs, to_markdown
from ragcds.index.update import update_index
from tests.fakes import FakeEmbedder
from tests.reindex_cli_helper import NEW_DOSE, OLD_DOSE, make_editions


@pytest.fixture(scope="module")
def editions(tmp_path_factory) -> tuple[Path, Path]:
    return make_editions(tmp_path_factory.mktemp("editions"))


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory, editions) -> tuple[Path, str, str]:
    index_dir = tmp_path_factory.mktemp("idx") / "index"
    first = build_index(editions[0], index_dir, FakeEmbedder(64), "fake:64").version_id
    second = update_index(editions[1], index_dir, FakeEmbedder(64), "fake:64").new_version
    return index_dir, first, second


def _check(rep) -> None:
    assert [(a["number"], a["title"]) for a in rep.added] == [("2.1.4", "Plague")]
    assert [(r["number"], r["title"]) for r in rep.removed] == [("1.2.1", "Snakebites")]
    assert [c.number for c in rep.changed] == ["2.1.1"]
    udiff = rep.changed[0].unified_diff
    assert f"-{OLD_DOSE}" in udiff and f"+{NEW_DOSE}" in udiff
    assert (rep.changed[0].lines_added, rep.changed[0].lines_removed) == (1, 1)
    assert len(rep.numbers) == 1
    n = rep.numbers[0]
    assert (n.section, n.title, n.old, n.new, n.numbers_changed) == (
        "2.1.1",
        "Anthrax",
        OLD_DOSE,
        NEW_DOSE,
        True,
    )
    assert n.old_page == n.new_page == "3"  # the printed page label, not the PDF page (6)


def test_diff_two_pdfs(editions):
    _check(diff_refs(editions[0], editions[1]))


def test_diff_two_index_versions_all_reference_forms(two_versions, editions):
    index_dir, first, second = two_versions
    _check(diff_refs(f"{index_dir}@{first}", index_dir))  # DIR@ID vs CURRENT
    _check(diff_refs(index_dir / "versions" / first, f"{index_dir}@{second}"))  # version dir vs DIR@ID
    _check(diff_refs(editions[0], index_dir))  # a PDF against an index
    same = diff_refs(index_dir, editions[1])
    assert not same.added and not same.removed and not same.changed and not same.numbers


def test_markdown_lists_numbers_first(editions):
    md = to_markdown(diff_refs(editions[0], editions[1]))
    numbers_at = md.index("Changed numbers and doses")
    assert numbers_at < md.index("## Sections added") < md.index("## Sections changed")
    assert "500 mg" in md[numbers_at : md.index("## Sections added")] and "750 mg" in md
    assert "§2.1.4 Plague" in md and "§1.2.1 Snakebites" in md and "```diff" in md


def test_cli_diff_markdown_json_and_out(two_versions, tmp_path):
    index_dir, first, second = two_versions
    runner = CliRunner()
    res = runner.invoke(app, ["index", "diff", f"{index_dir}@{first}", f"{index_dir}@{second}"])
    assert res.exit_code == 0, res.output
    assert "Changed numbers and doses" in res.stdout and "750 mg" in res.stdout
    res = runner.invoke(app, ["index", "diff", f"{index_dir}@{first}", str(index_dir), "--json"])
    data = json.loads(res.stdout)
    assert data["summary"] == {
        "added": 1,
        "removed": 1,
        "changed": 1,
        "unchanged": data["summary"]["unchanged"],
        "number_changes": 1,
    }
    assert data["numbers"][0]["new"] == NEW_DOSE
    target = tmp_path / "changes.md"
    res = runner.invoke(app, ["index", "diff", f"{index_dir}@{first}", str(index_dir), "--out", str(target)])
    assert res.exit_code == 0 and "750 mg" in target.read_text()
    res = runner.invoke(app, ["index", "diff", f"{index_dir}@nope", str(index_dir)])
    assert res.exit_code == 1 and "ragcds index versions" in res.stderr
    assert store.current_version(index_dir) == second  # diff never changes anything
