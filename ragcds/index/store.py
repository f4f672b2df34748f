"""Versioned, failure-atomic index store.

Layout of an index directory::

    INDEX/CURRENT                 id of the live version (replaced atomically with os.replace)
    INDEX/versions/<id>/          one immutable version:
        manifest.json             written last; a version without it is incomplete and never loaded
        chunks.jsonl              one chunk per line (ids, section, pages, text)
        pages.jsonl               cleaned page text with printed labels (for diffs and validation)
        structure.json            contents entries, sections, contents coverage
        dense.faiss               FAISS IndexFlatIP, row i = chunks.jsonl line i
        sections.jsonl/.npy       section-level units and their vectors; hubness.npy (see index/sections.py)
        bm25/                     bm25s arrays (.npy, no pickle) and JSON vocabulary

A build writes into ``versions/.tmp-*``, renames it into place, then swaps CURRENT. Readers resolve
CURRENT once and keep reading their version, so a running search never sees a half-built index.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ragcds import __version__
from ragcds.config import INDEX_FORMAT_VERSION
from ragcds.errors import CorruptIndex, IndexNotFound, StaleIndex
from ragcds.index.dense import DenseIndex
from ragcds.index.lexical import LexicalIndex
from ragcds.ingest.chunk import Chunk

MANIFEST = "manifest.json"
CURRENT = "CURRENT"
VERSIONS = "versions"


def build_hint(index_dir: Path) -> str:
    return f"ragcds ingest PDF --index {index_dir}"


@dataclass
class LoadedIndex:
    path: Path  # the version directory
    manifest: dict
    chunks: list[Chunk]
    dense: DenseIndex
    lexical: LexicalIndex

    @property
    def version_id(self) -> str:
        return self.manifest["version_id"]


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_text_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def writer_lock(index_dir: Path) -> Iterator[None]:
    """One writer at a time per index directory (readers never take it)."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with (index_dir / ".lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_version(
    index_dir: Path,
    chunks: list[Chunk],
    dense: DenseIndex,
    lexical: LexicalIndex,
    manifest: dict,
    extra_json: dict[str, object] | None = None,
    extra_jsonl: dict[str, list[dict]] | None = None,
    activate: bool = True,
    before_activate: Callable[[Path], None] | None = None,
    write_extra: Callable[[Path], None] | None = None,
) -> str:
    """Write a complete new version and (optionally) make it current. Returns the version id.

    Nothing outside ``versions/.tmp-*`` changes until the version is complete on disk; a failure at any
    point leaves the previous CURRENT version untouched. ``write_extra(tmp_dir)`` adds further files (listed
    in the manifest's ``files`` like the others).
    """
    versions = index_dir / VERSIONS
    versions.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=versions, prefix=".tmp-"))
    try:
        with (tmp / "chunks.jsonl").open("w", encoding="utf-8") as fh:
            for c in chunks:
                fh.write(json.dumps(c.to_dict(), ensure_ascii=False) + "\n")
        for name, rows in (extra_jsonl or {}).items():
            with (tmp / name).open("w", encoding="utf-8") as fh:
                for row in rows:
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        for name, obj in (extra_json or {}).items():
            (tmp / name).write_text(json.dumps(obj, ensure_ascii=False, indent=1), encoding="utf-8")
        dense.save(tmp / "dense.faiss")
        lexical.save(tmp / "bm25")
        if write_extra:
            write_extra(tmp)
        files = {
            p.relative_to(tmp).as_posix(): {"bytes": p.stat().st_size, "sha256": _sha256(p)}
            for p in sorted(tmp.rglob("*")) if p.is_file()
        }
        content_key = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:8]
        version_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{content_key}"
        manifest = {
            **manifest,
            "ragcds_version": __version__,
            "format_version": INDEX_FORMAT_VERSION,
            "version_id": version_id,
            "chunk_count": len(chunks),
            "files": files,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
        final = versions / version_id
        if final.exists():  # same content built twice in one second: keep the existing copy
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, final)
        _fsync_dir(versions)
        if before_activate:
            before_activate(final)
        if activate:
            set_current(index_dir, version_id)
        return version_id
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def set_current(index_dir: Path, version_id: str) -> None:
    vdir = index_dir / VERSIONS / version_id
    if not (vdir / MANIFEST).exists():
        raise IndexNotFound(f"no complete version {version_id} in {index_dir} — see: ragcds index versions")
    write_text_atomic(index_dir / CURRENT, version_id + "\n")


def current_version(index_dir: Path) -> str | None:
    try:
        return (index_dir / CURRENT).read_text().strip() or None
    except FileNotFoundError:
        return None


def list_versions(index_dir: Path) -> list[dict]:
    vroot = index_dir / VERSIONS
    if not vroot.is_dir():
        return []
    out = []
    for d in sorted(vroot.iterdir()):
        if d.name.startswith(".") or not (d / MANIFEST).exists():
            continue
        out.append(json.loads((d / MANIFEST).read_text()))
    return out


def remove_stale_temps(index_dir: Path, older_than_s: float = 0) -> int:
    """Delete leftovers of interrupted builds (call under the writer lock)."""
    vroot = index_dir / VERSIONS
    n = 0
    if vroot.is_dir():
        for d in vroot.glob(".tmp-*"):
            if time.time() - d.stat().st_mtime >= older_than_s:
                shutil.rmtree(d, ignore_errors=True)
                n += 1
    return n


def resolve_version_dir(index_dir: Path) -> Path:
    """The version directory an index path stands for (a version folder itself, or CURRENT)."""
    index_dir = Path(index_dir)
    if (index_dir / MANIFEST).exists():
        return index_dir
    vid = current_version(index_dir)
    if vid is None:
        raise IndexNotFound(f"no index at {index_dir} — build it: {build_hint(index_dir)}")
    vdir = index_dir / VERSIONS / vid
    if not (vdir / MANIFEST).exists():
        raise CorruptIndex(
            f"{index_dir}/CURRENT points at missing version {vid} — run: ragcds index versions, then "
            f"ragcds index activate ID (or rebuild: {build_hint(index_dir)})"
        )
    return vdir


def read_manifest(vdir: Path) -> dict:
    try:
        manifest = json.loads((vdir / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CorruptIndex(f"unreadable manifest in {vdir} ({exc}) — rebuild: {build_hint(vdir)}") from exc
    if manifest.get("format_version") != INDEX_FORMAT_VERSION:
        raise StaleIndex(
            f"index at {vdir} has format {manifest.get('format_version')}, this ragcds reads "
            f"{INDEX_FORMAT_VERSION} — rebuild it with ragcds ingest"
        )
    return manifest


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def load_index(index_dir: Path, embedder_id: str | None = None) -> LoadedIndex:
    """Load the live version; refuse when it was built with a different embedder than ``embedder_id``."""
    vdir = resolve_version_dir(Path(index_dir))
    manifest = read_manifest(vdir)
    if embedder_id is not None and manifest["embedder"]["id"] != embedder_id:
        raise StaleIndex(
            f"index built with embedder {manifest['embedder']['id']} but {embedder_id} is loaded — rebuild: "
            f"ragcds ingest PDF --index {index_dir} (or pass the embedder the index was built with)"
        )
    try:
        chunks = [Chunk.from_dict(d) for d in read_jsonl(vdir / "chunks.jsonl")]
        dense = DenseIndex.load(vdir / "dense.faiss")
        lexical = LexicalIndex.load(vdir / "bm25")
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise CorruptIndex(f"index files in {vdir} are damaged ({exc}) — rebuild: {build_hint(index_dir)}") from exc
    if not (len(chunks) == dense.size == manifest["chunk_count"]):
        raise CorruptIndex(
            f"index in {vdir} is inconsistent ({len(chunks)} chunks, {dense.size} vectors, manifest says "
            f"{manifest['chunk_count']}) — rebuild: {build_hint(index_dir)}"
        )
    if dense.dim != manifest["embedder"]["dim"]:
        raise CorruptIndex(f"vector dimension {dense.dim} ≠ manifest {manifest['embedder']['dim']} — rebuild")
    return LoadedIndex(path=vdir, manifest=manifest, chunks=chunks, dense=dense, lexical=lexical)
