"""`ragcds index update`: re-index from a new PDF (errata or new edition), gated, failure-atomic.

Steps: build a complete new version *inactive* (vectors of unchanged chunk texts are reused from the live
version, so only changed chunks are embedded; the new version holds exactly the new chunks, so removed
chunks disappear and nothing is duplicated) → run the validation gates on it → swap ``CURRENT`` only if
every gate passed (or ``force`` with a reason). A kill at any point leaves ``CURRENT`` on the old or the new
version, never a mix: the new version only becomes visible through one atomic ``os.replace``.

The PDF is read through the page-text cache (``ragcds.ingest.pagecache``), so an errata PDF re-extracts
only its edited pages; change counts come from ``ragcds.index.diff.classify_changes``.

Test hook: ``RAGCDS_TEST_PAUSE_AT=<stage>`` makes the process print ``PAUSED <stage>`` to stderr and sleep
(``RAGCDS_TEST_PAUSE_SECONDS``, default 30) at that stage, so tests can kill it there. Inert when unset.
Stages: read, chunk, embed (while building), built (new version on disk, inactive), gated (before the swap),
swapped (after the swap, before the history line).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ragcds.config import Settings
from ragcds.errors import RagcdsError
from ragcds.index import store, versions
from ragcds.index.build import BuildReport, build_index
from ragcds.index.diff import ChangeCounts, classify_changes
from ragcds.index.embedders import Embedder
from ragcds.index.gates import GateReport, run_gates
from ragcds.index.version import VersionData
from ragcds.ingest.pagecache import CachedPageReader
from ragcds.ingest.pipeline import Progress
from ragcds.retrieve import version_search

PAUSE_ENV = "RAGCDS_TEST_PAUSE_AT"


def pause_point(stage: str) -> None:
    """Test-only: sleep at ``stage`` when RAGCDS_TEST_PAUSE_AT names it (no effect otherwise)."""
    if os.environ.get(PAUSE_ENV) == stage:
        print(f"PAUSED {stage}", file=sys.stderr, flush=True)
        time.sleep(float(os.environ.get("RAGCDS_TEST_PAUSE_SECONDS", "30")))


@dataclass
class UpdateReport:
    index_dir: str
    previous_version: str | None
    new_version: str
    activated: bool
    forced: bool
    reason: str
    counts: ChangeCounts
    build: BuildReport
    gates: GateReport
    seconds: dict[str, float]
    page_cache: dict[str, int] = field(default_factory=dict)  # pages whose text was reused / extracted

    def to_dict(self) -> dict:
        return {
            "index_dir": self.index_dir,
            "previous_version": self.previous_version,
            "new_version": self.new_version,
            "activated": self.activated,
            "forced": self.forced,
            "reason": self.reason,
            "counts": self.counts.to_dict(),
            "embedded": self.build.embedded,
            "reused": self.build.reused,
            "chunks": self.build.chunks,
            "pages": self.build.pages,
            "gates": self.gates.to_dict(),
            "page_cache": self.page_cache,
            "build_seconds": {k: round(v, 3) for k, v in self.build.stage_seconds.items()},
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


def update_index(
    pdf: Path,
    index_dir: Path,
    embedder: Embedder,
    embedder_ref: str,
    settings: Settings | None = None,
    progress: Progress | None = None,
    force: bool = False,
    reason: str = "",
    event: str = "update",
) -> UpdateReport:
    """Build a new version inactive, gate it, then swap CURRENT (or keep it inactive when a gate fails).

    ``ragcds ingest`` runs this too (``event="ingest"``), so a wrong PDF cannot silently replace an index.
    Each version is read once (:class:`VersionData`) and handed to the change counts, the vector reuse and
    the gates."""
    settings = settings or Settings()
    index_dir = Path(index_dir)
    versions.require_reason(force, reason)
    seconds: dict[str, float] = {}
    previous = store.current_version(index_dir)
    # compared with the live version only when it is intact (a damaged one is replaced like a first build)
    prev_vdir = versions.intact_live_version(index_dir) if previous else None
    old = VersionData.load(prev_vdir) if prev_vdir else None

    def staged(stage: str, done: int, total: int) -> None:
        if progress:
            progress(stage, done, total)
        if done >= total:
            pause_point(stage)

    t = time.perf_counter()
    reader = CachedPageReader(index_dir)
    build = build_index(pdf, index_dir, embedder, embedder_ref, settings, progress=staged, activate=False,
                        reader=reader, previous=old, reuse_live=False)
    seconds["build"] = time.perf_counter() - t
    new = VersionData.load(index_dir / store.VERSIONS / build.version_id)
    pause_point("built")
    counts = classify_changes(old.chunks if old else [], new.chunks)
    t = time.perf_counter()
    gates = _run_gates(new, old, embedder, settings, counts, progress)
    seconds["gates"] = time.perf_counter() - t
    pause_point("gated")
    t = time.perf_counter()
    go, forced = _decide(index_dir, previous, build, gates, counts, force, reason, event, pdf)
    seconds["swap"] = time.perf_counter() - t
    return UpdateReport(str(index_dir), previous, build.version_id, go, forced, reason, counts, build, gates,
                        seconds, {"hits": reader.hits, "misses": reader.misses})


def _run_gates(new: VersionData, old: VersionData | None, embedder: Embedder, settings: Settings,
               counts: ChangeCounts, progress: Progress | None) -> GateReport:
    if progress:
        progress("gates", 0, 1)
    report = run_gates(new, old, version_search(embedder), settings.gates, priority_sections=counts.changed_sections)
    if progress:
        progress("gates", 1, 1)
    return report


def _decide(index_dir: Path, previous: str | None, build: BuildReport, gates: GateReport, counts: ChangeCounts,
            force: bool, reason: str, event: str, pdf: Path) -> tuple[bool, bool]:
    """Record the decision (activation.json, history.jsonl) and swap CURRENT when it goes live; returns
    (went live, forced)."""
    new_vdir = index_dir / store.VERSIONS / build.version_id
    same = previous is not None and build.version_id == previous
    go = gates.passed or force
    forced = bool(force and not gates.passed)
    record = {
        "version_id": build.version_id, "decided_at": versions.now_iso(), "previous": previous,
        "status": "live-candidate" if go else "blocked", "forced": forced, "reason": reason,
        "gates": gates.to_dict(), "counts": counts.to_dict(), "embedded": build.embedded, "reused": build.reused,
        "source": str(pdf),
    }
    with store.writer_lock(index_dir):
        if store.current_version(index_dir) != previous:
            raise RagcdsError(
                f"the live version changed during this update (now {store.current_version(index_dir)}); "
                f"the new version {build.version_id} is kept inactive — check: "
                f"ragcds index versions --index {index_dir}"
            )
        if not same or not versions.read_activation(new_vdir):
            versions.write_activation(new_vdir, record)
        if go and not same:
            store.set_current(index_dir, build.version_id)
            pause_point("swapped")
        versions.append_history(
            index_dir, event if go else "blocked",
            **{"from": previous, "to": build.version_id if go else previous, "candidate": build.version_id,
               "gates_passed": gates.passed, "failed_gates": gates.failed, "forced": forced, "reason": reason,
               "counts": counts.to_dict(), "embedded": build.embedded},
        )
    return go, forced
