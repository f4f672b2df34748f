"""SIGKILL an `index update` subprocess at named stages and after random delays: afterwards CURRENT answers
queries and is exactly the old or the new version, never a mix; a rerun then completes."""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from ragcds.config import Settings
from ragcds.index import store
from ragcds.index.build import build_index
from ragcds.index.update import update_index
from ragcds.ingest.pipeline import parse_pdf
from ragcds.retrieve import HybridRetriever
from tests.fakes import FakeEmbedder
from tests.reindex_cli_helper import REPO, cli_command, cli_env, make_editions


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("kill")
    ed1, ed2 = make_editions(folder)
    base = folder / "base-index"
    build_index(ed1, base, FakeEmbedder(64), "fake:64")
    return {
        "base": base,
        "old_version": store.current_version(base),
        "new_pdf": ed2,
        "old_ids": [c.chunk_id for c in store.load_index(base).chunks],
        "new_ids": [c.chunk_id for c in parse_pdf(ed2, Settings()).chunks],
    }


def _start(index_dir: Path, pdf: Path, log: Path, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        cli_command(
            "index", "update", str(pdf), "--index", str(index_dir), "--embedder", "fake:64", "--json"
        ),
        cwd=REPO,
        env=cli_env(**env),
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )


def _wait_for(log: Path, marker: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            raise AssertionError(f"process ended (rc {proc.returncode}) before {marker!r}: {log.read_text()}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"timed out waiting for {marker!r}")


def _check_consistent(index_dir: Path, setup: dict) -> str:
    """CURRENT loads, answers, and is entirely the old or entirely the new edition. Returns 'old'/'new'."""
    loaded = store.load_index(index_dir)
    ids = [c.chunk_id for c in loaded.chunks]
    which = "old" if ids == setup["old_ids"] else "new" if ids == setup["new_ids"] else "MIX"
    assert which != "MIX", f"CURRENT {loaded.version_id} is neither edition"
    assert loaded.dense.size == len(ids) == loaded.manifest.chunk_count
    hits = HybridRetriever.open(index_dir, FakeEmbedder(64)).search("anthrax ciprofloxacin dose", k=3)
    assert hits and hits[0].chunk.chunk_id in set(ids)
    return which


def _finish_and_check(index_dir: Path, setup: dict) -> None:
    """After a kill, a normal update completes (the lock died with the process, leftovers are cleaned)."""
    update_index(setup["new_pdf"], index_dir, FakeEmbedder(64), "fake:64")
    assert _check_consistent(index_dir, setup) == "new"
    assert not list((index_dir / "versions").glob(".tmp-*"))


@pytest.mark.parametrize(
    "stage, expect",
    [
        ("read", "old"),
        ("embed", "old"),
        ("built", "old"),
        ("gated", "old"),
        ("swapped", "new"),
    ],
)
def test_kill_at_stage(tmp_path, setup, stage, expect):
    index_dir = tmp_path / "index"
    shutil.copytree(setup["base"], index_dir)
    log = tmp_path / "stderr.log"
    proc = _start(
        index_dir, setup["new_pdf"], log, RAGCDS_TEST_PAUSE_AT=stage, RAGCDS_TEST_PAUSE_SECONDS="60"
    )
    _wait_for(log, f"PAUSED {stage}", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert _check_consistent(index_dir, setup) == expect
    _finish_and_check(index_dir, setup)


def test_kill_after_random_delays(tmp_path, setup):
    rng = random.Random(5)
    # measure one uninterrupted run, then kill others at random points inside its duration
    index_dir = tmp_path / "timing"
    shutil.copytree(setup["base"], index_dir)
    t = time.monotonic()
    proc = _start(index_dir, setup["new_pdf"], tmp_path / "t.log")
    assert proc.wait(timeout=120) == 0, (tmp_path / "t.log").read_text()
    duration = time.monotonic() - t
    seen = set()
    for n in range(2):
        index_dir = tmp_path / f"index{n}"
        shutil.copytree(setup["base"], index_dir)
        proc = _start(index_dir, setup["new_pdf"], tmp_path / f"{n}.log")
        time.sleep(rng.uniform(0.5, 1.0) * duration)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        seen.add(_check_consistent(index_dir, setup))
        _finish_and_check(index_dir, setup)
    assert seen <= {"old", "new"}


def test_version_left_by_a_kill_before_the_gates_is_gated_on_activation(tmp_path, setup):
    from ragcds.errors import GateFailed
    from ragcds.index import versions
    from tests.pdfgen import DEFAULT_SECTIONS, make_guideline_pdf

    index_dir = tmp_path / "index"
    shutil.copytree(setup["base"], index_dir)
    short = make_guideline_pdf(tmp_path / "short.pdf", DEFAULT_SECTIONS[:5])  # a wrong PDF: gates would fail
    log = tmp_path / "stderr.log"
    proc = _start(index_dir, short, log, RAGCDS_TEST_PAUSE_AT="built", RAGCDS_TEST_PAUSE_SECONDS="60")
    _wait_for(log, "PAUSED built", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    left = [r for r in versions.version_rows(index_dir) if not r["live"]]
    assert len(left) == 1 and left[0]["gates"] == "-"
    with pytest.raises(GateFailed):
        versions.activate(index_dir, left[0]["version_id"])
    assert store.current_version(index_dir) == setup["old_version"]
    assert versions.gate_status(index_dir / "versions" / left[0]["version_id"]) == "FAILED"
