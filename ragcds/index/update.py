"""`ragcds index update`: re-index from a new PDF (errata or new edition), gated, failure-atomic.

Steps: build a complete new version *inactive* (vectors of unchanged chunk texts are reused from the live
version, so only changed chunks are embedded; the new version holds exactly the new chunks, so removed
chunks disappear and nothing is duplicated) → run the validation gates on it → swap ``CURRENT`` only if
every gate passed (or ``force`` with a reason). A kill at any point leaves ``CURRENT`` on the old or the new
version, never a mix: the new version only becomes visible through one atomic ``os.replace``.

Change counts (old live version vs new version, chunk by chunk):

* unchanged — the chunk id (hash of section, PDF pages and text) is in both versions;
* moved     — same section and identical text, but on other PDF pages (pages shifted); not re-embedded;
* changed   — the remaining chunks of a section present in both versions, paired in order;
* added / removed — the rest (new sections, extra chunks in a section / sections or chunks that went).

Page-text cache: text extraction is the slowest step after embedding (~6 s for the UCG), so update reads
the PDF through :class:`CachedPageReader`: each page's extracted text is cached in ``INDEX/cache/
page-text.jsonl`` under a digest of everything extraction depends on (content streams, resources with
fonts and forms resolved recursively, rotation, pypdf version). An errata PDF re-extracts only its edited
pages. Any problem with the cache falls back to the reference reader (``ingest.pdf.read_pdf``).

Test hook: ``RAGCDS_TEST_PAUSE_AT=<stage>`` makes the process print ``PAUSED <stage>`` to stderr and sleep
(``RAGCDS_TEST_PAUSE_SECONDS``, default 30) at that stage, so tests can kill it there. Inert when unset.
Stages: read, chunk, embed (while building), built (new version on disk, inactive), gated (before the swap),
swapped (after the swap, before the history line).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ragcds.config import Settings
from ragcds.errors import RagcdsError
from ragcds.index import store, versions
from ragcds.index.build import BuildReport, Progress, build_index
from ragcds.index.embedders import Embedder
from ragcds.index.gates import GateReport, run_gates
from ragcds.ingest.chunk import Chunk
from ragcds.ingest.pdf import Page, read_pdf

PAUSE_ENV = "RAGCDS_TEST_PAUSE_AT"
PAGE_CACHE = Path("cache") / "page-text.jsonl"
PAGE_CACHE_MAX = 5000  # entries kept (about four editions of the UCG)


def _digest(obj: object, h: hashlib._Hash, memo: dict, depth: int = 0) -> None:
    """Feed a PDF object into ``h`` by content: indirect references resolved (memoised), streams by their
    stored bytes, /Parent links skipped."""
    from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, StreamObject

    if isinstance(obj, IndirectObject):
        key = (obj.idnum, obj.generation)
        if key not in memo:
            memo[key] = b"cycle"
            sub = hashlib.sha256()
            _digest(obj.get_object(), sub, memo, depth + 1)
            memo[key] = sub.digest()
        h.update(memo[key])
        return
    if depth > 32:
        h.update(b"<deep>")
        return
    if isinstance(obj, StreamObject):
        data = getattr(obj, "_data", None)
        h.update(b"S" + hashlib.sha256(data if isinstance(data, bytes) else obj.get_data()).digest())
    if isinstance(obj, DictionaryObject):
        h.update(b"{")
        for k in sorted(obj):
            if k != "/Parent":
                h.update(str(k).encode())
                _digest(obj.raw_get(k), h, memo, depth + 1)
        h.update(b"}")
    elif isinstance(obj, ArrayObject):
        h.update(b"[")
        for item in obj:
            _digest(item, h, memo, depth + 1)
        h.update(b"]")
    elif not isinstance(obj, StreamObject):
        h.update(repr(obj).encode())


_NAME = rb"/([^\s/\[\]<>(){}%]+)"
_USES_FONT = re.compile(_NAME + rb"\s+[-+\d.]+\s+Tf")
_USES_XOBJECT = re.compile(_NAME + rb"\s+Do\b")


def page_key(page: object, memo: dict) -> str:
    """Digest of what text extraction of one pypdf page depends on: its content streams, rotation and
    resources — of the /Font and /XObject dictionaries only the entries the content uses (resource
    dictionaries are often shared by all pages, and an edit elsewhere may add fonts to them)."""
    import pypdf

    h = hashlib.sha256(f"pypdf {pypdf.__version__}".encode())
    for name in ("/Contents", "/Rotate"):
        h.update(name.encode())
        if name in page:  # type: ignore[operator]
            _digest(page.raw_get(name), h, memo)  # type: ignore[attr-defined]
    contents = page.get_contents()  # type: ignore[attr-defined]
    data = contents.get_data() if contents is not None else b""
    used = {"/Font": set(_USES_FONT.findall(data)), "/XObject": set(_USES_XOBJECT.findall(data))}
    resources = page.get("/Resources")  # type: ignore[attr-defined]
    resources = resources.get_object() if resources is not None else {}
    for key in sorted(resources):
        h.update(str(key).encode())
        if key in used:
            sub = resources[key].get_object()
            for name in sorted(sub):
                if str(name)[1:].encode() in used[key]:
                    h.update(str(name).encode())
                    _digest(sub.raw_get(name), h, memo)
        else:
            _digest(resources.raw_get(key), h, memo)
    return h.hexdigest()


class CachedPageReader:
    """A drop-in for ``read_pdf`` that reuses the extracted text of unchanged pages (see module docs)."""

    def __init__(self, index_dir: Path):
        self.path = Path(index_dir) / PAGE_CACHE
        self.hits = 0
        self.misses = 0

    def _load(self) -> dict[str, str]:
        try:
            return {r["key"]: r["text"] for r in store.read_jsonl(self.path)}
        except (OSError, ValueError, KeyError):
            return {}

    def __call__(self, pdf: Path, progress=None) -> list[Page]:
        cache = self._load()
        fresh: dict[str, str] = {}
        memo: dict = {}

        def extract(page) -> str:
            try:
                key = page_key(page, memo)
            except Exception:  # noqa: BLE001 - a page we cannot key is simply extracted
                self.misses += 1
                return page.extract_text() or ""
            text = cache.get(key)
            if text is None:
                text = page.extract_text() or ""
                self.misses += 1
            else:
                self.hits += 1
            fresh[key] = text
            return text

        pages = read_pdf(pdf, progress=progress, extract=extract)
        if self.misses:
            merged = {**fresh, **{k: v for k, v in cache.items() if k not in fresh}}
            rows = list(merged.items())[:PAGE_CACHE_MAX]
            with contextlib.suppress(OSError):  # a cache that cannot be written is only a slower next run
                self.path.parent.mkdir(parents=True, exist_ok=True)
                store.write_text_atomic(
                    self.path,
                    "".join(json.dumps({"key": k, "text": v}, ensure_ascii=False) + "\n" for k, v in rows),
                )
        return pages


def pause_point(stage: str) -> None:
    """Test-only: sleep at ``stage`` when RAGCDS_TEST_PAUSE_AT names it (no effect otherwise)."""
    if os.environ.get(PAUSE_ENV) == stage:
        print(f"PAUSED {stage}", file=sys.stderr, flush=True)
        time.sleep(float(os.environ.get("RAGCDS_TEST_PAUSE_SECONDS", "30")))


@dataclass
class ChangeCounts:
    unchanged: int = 0
    moved: int = 0
    changed: int = 0
    added: int = 0
    removed: int = 0
    changed_sections: list[str] = field(default_factory=list)  # sections with any changed/added/removed chunk

    def to_dict(self) -> dict:
        return asdict(self)


def classify_changes(old: list[Chunk], new: list[Chunk]) -> ChangeCounts:
    """Compare two chunk lists (see the module docstring for the definitions)."""
    counts = ChangeCounts()
    old_ids = {c.chunk_id for c in old}
    new_ids = {c.chunk_id for c in new}
    counts.unchanged = len(old_ids & new_ids)
    old_rest: dict[str, list[Chunk]] = defaultdict(list)
    new_rest: dict[str, list[Chunk]] = defaultdict(list)
    for c in old:
        if c.chunk_id not in new_ids:
            old_rest[c.section or c.title].append(c)
    for c in new:
        if c.chunk_id not in old_ids:
            new_rest[c.section or c.title].append(c)
    touched: list[str] = []
    for key in dict.fromkeys([*old_rest, *new_rest]):
        o, n = old_rest.get(key, []), new_rest.get(key, [])
        o_texts = Counter(c.text for c in o)
        still_new = []
        for c in n:  # identical text, other pages: moved
            if o_texts[c.text] > 0:
                o_texts[c.text] -= 1
                counts.moved += 1
            else:
                still_new.append(c)
        o_left = sum(o_texts.values())
        if not o_left and not still_new:
            continue
        touched.append(key)
        if o and n:  # the section exists in both versions
            pairs = min(o_left, len(still_new))
            counts.changed += pairs
            counts.added += len(still_new) - pairs
            counts.removed += o_left - pairs
        else:
            counts.added += len(still_new)
            counts.removed += o_left
    counts.changed_sections = touched
    return counts


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


def _load_chunks(vdir: Path | None) -> list[Chunk]:
    if vdir is None:
        return []
    return [Chunk.from_dict(d) for d in store.read_jsonl(vdir / "chunks.jsonl")]


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

    ``ragcds ingest`` runs this too (``event="ingest"``), so a wrong PDF cannot silently replace an index."""
    settings = settings or Settings()
    index_dir = Path(index_dir)
    if force and not reason.strip():
        raise RagcdsError(
            '--force needs --reason "why this version may go live" (it is recorded with the version)'
        )
    seconds: dict[str, float] = {}
    previous = store.current_version(index_dir)
    # compared with the live version only when it is intact (a damaged one is replaced like a first build)
    prev_vdir = versions.intact_live_version(index_dir) if previous else None

    def staged(stage: str, done: int, total: int) -> None:
        if progress:
            progress(stage, done, total)
        if done >= total:
            pause_point(stage)

    t = time.perf_counter()
    reader = CachedPageReader(index_dir)
    build = build_index(
        pdf, index_dir, embedder, embedder_ref, settings, progress=staged, activate=False, reader=reader
    )
    seconds["build"] = time.perf_counter() - t

    new_vdir = index_dir / store.VERSIONS / build.version_id
    pause_point("built")
    counts = classify_changes(_load_chunks(prev_vdir), _load_chunks(new_vdir))
    t = time.perf_counter()
    if progress:
        progress("gates", 0, 1)
    gates = run_gates(
        new_vdir, prev_vdir, embedder, settings.gates, priority_sections=counts.changed_sections
    )
    if progress:
        progress("gates", 1, 1)
    seconds["gates"] = time.perf_counter() - t
    pause_point("gated")
    same = previous is not None and build.version_id == previous
    go = gates.passed or force
    record = {
        "version_id": build.version_id,
        "decided_at": versions.now_iso(),
        "previous": previous,
        "status": "live-candidate" if go else "blocked",
        "forced": bool(force and not gates.passed),
        "reason": reason,
        "gates": gates.to_dict(),
        "counts": counts.to_dict(),
        "embedded": build.embedded,
        "reused": build.reused,
        "source": str(pdf),
    }
    t = time.perf_counter()
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
            index_dir,
            event if go else "blocked",
            **{
                "from": previous,
                "to": build.version_id if go else previous,
                "candidate": build.version_id,
                "gates_passed": gates.passed,
                "failed_gates": gates.failed,
                "forced": record["forced"],
                "reason": reason,
                "counts": counts.to_dict(),
                "embedded": build.embedded,
            },
        )
    seconds["swap"] = time.perf_counter() - t
    return UpdateReport(
        str(index_dir),
        previous,
        build.version_id,
        go,
        record["forced"],
        reason,
        counts,
        build,
        gates,
        seconds,
        {"hits": reader.hits, "misses": reader.misses},
    )
