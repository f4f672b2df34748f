"""Searches running in a loop while `index update` subprocesses swap versions: every search succeeds and
sees one whole version (old before the swap, new after)."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

from ragcds.config import Settings
from ragcds.index import store
from ragcds.index.build import build_index
from ragcds.ingest.pipeline import parse_pdf
from ragcds.retrieve import HybridRetriever
from tests.fakes import FakeEmbedder
from tests.reindex_cli_helper import REPO, cli_command, cli_env, make_editions


def test_searches_keep_working_during_updates(tmp_path: Path):
    ed1, ed2 = make_editions(tmp_path)
    index_dir = tmp_path / "index"
    build_index(ed1, index_dir, FakeEmbedder(64), "fake:64")
    editions = {tuple(c.chunk_id for c in parse_pdf(p, Settings()).chunks) for p in (ed1, ed2)}
    stop = threading.Event()
    errors: list[str] = []
    versions_seen: list[str] = []
    searches = 0

    def reader() -> None:
        nonlocal searches
        emb = FakeEmbedder(64)
        while not stop.is_set():
            try:
                retriever = HybridRetriever.open(index_dir, emb)  # resolves CURRENT once per load
                ids = tuple(c.chunk_id for c in retriever.chunks)
                if ids not in editions:
                    errors.append(f"mixed version {retriever.index.version_id}")
                for q in ("anthrax ciprofloxacin", "severe malaria artesunate", "dehydration ORS"):
                    hits = retriever.search(q, k=3)
                    if not hits:
                        errors.append(f"no hits for {q}")
                searches += 3
                if not versions_seen or versions_seen[-1] != retriever.index.version_id:
                    versions_seen.append(retriever.index.version_id)
            except Exception as exc:  # noqa: BLE001 - any failure is the finding
                errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for pdf in (ed2, ed1):
            proc = subprocess.run(
                cli_command(
                    "index", "update", str(pdf), "--index", str(index_dir), "--embedder", "fake:64", "--json"
                ),
                cwd=REPO,
                env=cli_env(),
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert proc.returncode == 0, proc.stderr
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not errors, errors[:5]
    assert searches > 10
    assert len(set(versions_seen)) >= 2  # the readers saw the swaps
    assert versions_seen[-1] == store.current_version(index_dir) or len(versions_seen) > 1
