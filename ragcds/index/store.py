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

Integrity: the manifest records the size and sha256 of every file. :func:`load_index` reads each file it
loads once, hashes those bytes and parses the same bytes, so a file changed after the build (an edited dose
in ``chunks.jsonl``) is refused with a message naming the recovery (roll back to an intact version, or
rebuild). :func:`verify_version` checks every file of a version (``ragcds index verify``). This guards
against damage and careless edits, not against someone who also rewrites the manifest.
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
from ragcds.errors import BadVersionId, CorruptIndex, IndexNotFound, StaleIndex
from ragcds.files import fsync_dir, jsonl_text, sha256_file, write_text_atomic
from ragcds.index.dense import DenseIndex
from ragcds.index.history import rollback_target
from ragcds.index.integrity import Mismatch, file_problems, verified_bytes
from ragcds.index.layout import (  # noqa: F401 - the store's public names live in layout
    CURRENT,
    MANIFEST,
    VERSIONS,
    build_hint,
    check_version_id,
    current_version,
    index_root,
    list_versions,
    require_index,
    version_path,
)
from ragcds.index.lexical import TOKENIZER_ID, LexicalIndex
from ragcds.index.manifest import Manifest
from ragcds.ingest.chunk import Chunk


@dataclass
class LoadedIndex:
    path: Path  # the version directory
    manifest: Manifest
    chunks: list[Chunk]
    dense: DenseIndex
    lexical: LexicalIndex

    @property
    def version_id(self) -> str:
        return self.manifest.version_id


@contextlib.contextmanager
def writer_lock(index_dir: Path, create: bool = True) -> Iterator[None]:
    """One writer at a time per index directory (readers never take it). ``create=False``: the index
    directory must exist already (commands that only administer an index never create one)."""
    index_dir = Path(index_dir)
    if create:
        index_dir.mkdir(parents=True, exist_ok=True)
    else:
        require_index(index_dir)
    with (index_dir / ".lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


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
        (tmp / "chunks.jsonl").write_text(jsonl_text(c.to_dict() for c in chunks), encoding="utf-8")
        for name, rows in (extra_jsonl or {}).items():
            (tmp / name).write_text(jsonl_text(rows), encoding="utf-8")
        for name, obj in (extra_json or {}).items():
            (tmp / name).write_text(json.dumps(obj, ensure_ascii=False, indent=1), encoding="utf-8")
        dense.save(tmp / "dense.faiss")
        lexical.save(tmp / "bm25")
        if write_extra:
            write_extra(tmp)
        version_id = _write_manifest(tmp, manifest, len(chunks))
        final = _place(tmp, versions / version_id)
        if before_activate:
            before_activate(final)
        if activate:
            set_current(index_dir, version_id)
        return version_id
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_manifest(tmp: Path, manifest: dict, chunk_count: int) -> str:
    """Write the manifest (last: it lists every other file with its sha256); returns the version id."""
    files = {
        p.relative_to(tmp).as_posix(): {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
        for p in sorted(tmp.rglob("*")) if p.is_file()
    }
    content_key = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:8]
    version_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{content_key}"
    manifest = {
        **manifest,
        "ragcds_version": __version__,
        "format_version": INDEX_FORMAT_VERSION,
        "version_id": version_id,
        "chunk_count": chunk_count,
        "files": files,
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    return version_id


def _intact_copy(final: Path) -> bool:
    """An intact copy of this very version: its manifest names it, is of this format, and every file it lists
    matches (a manifest edited by hand — another format, another id — is not)."""
    try:
        data = json.loads((final / MANIFEST).read_text(encoding="utf-8"))
        return (data.get("format_version") == INDEX_FORMAT_VERSION and data.get("version_id") == final.name
                and not verify_version(final))
    except (OSError, ValueError, KeyError, TypeError, CorruptIndex, StaleIndex):
        return False


def _place(tmp: Path, final: Path) -> Path:
    """Rename the finished ``tmp`` folder to ``final`` (one os.replace)."""
    if final.exists() and _intact_copy(final):
        shutil.rmtree(tmp)  # same content built twice in one second: keep the existing (intact) copy
    else:
        if final.exists():  # a damaged or incomplete copy of the same id: set aside, never served again
            os.replace(final, final.parent / f".damaged-{final.name}-{time.time_ns()}")
        os.replace(tmp, final)
    fsync_dir(final.parent)
    return final


def set_current(index_dir: Path, version_id: str) -> None:
    vdir = version_path(index_dir, version_id)
    if not (vdir / MANIFEST).exists():
        raise IndexNotFound(f"no complete version {version_id} in {index_dir} — see: ragcds index versions")
    write_text_atomic(index_dir / CURRENT, version_id + "\n")


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


def recovery_hint(index_dir: Path, broken: str | None) -> str:
    """The command that fixes a damaged live version: roll back to an intact one, else rebuild."""
    root = index_root(Path(index_dir))
    target = rollback_target(root, broken) if (root / VERSIONS).is_dir() else None
    if target:
        return f"roll back to the intact version {target}: ragcds index activate {target} --index {root}"
    ref = None
    with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):  # the embedder it was built with
        ref = Manifest.from_dict(json.loads((root / VERSIONS / str(broken) / MANIFEST).read_text("utf-8"))).embedder.ref
    return f"rebuild it from the guideline PDF: {build_hint(root, ref)}"


def resolve_version_dir(index_dir: Path) -> Path:
    """The version directory an index path stands for (a version folder itself, or CURRENT)."""
    index_dir = Path(index_dir)
    if (index_dir / MANIFEST).exists():
        return index_dir
    vid = current_version(index_dir)
    if vid is None:
        raise IndexNotFound(f"no index at {index_dir} — build it: {build_hint(index_dir)}")
    try:
        vdir = version_path(index_dir, vid)
    except BadVersionId:
        raise CorruptIndex(
            f"{index_dir}/CURRENT holds {vid[:60]!r}, not a version id — {recovery_hint(index_dir, None)}"
        ) from None
    if not (vdir / MANIFEST).exists():
        raise CorruptIndex(
            f"{index_dir}/CURRENT points at missing version {vid} — {recovery_hint(index_dir, vid)}"
        )
    return vdir


def read_manifest(vdir: Path) -> Manifest:
    """The version's manifest; refuses an unreadable one or one of another format, naming the fix."""
    vdir = Path(vdir)
    try:
        raw = json.loads((vdir / MANIFEST).read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
        manifest = Manifest.from_dict(raw)
    except (OSError, ValueError, TypeError) as exc:
        raise CorruptIndex(
            f"unreadable manifest in {vdir} ({exc}) — {recovery_hint(index_root(vdir), vdir.name)}"
        ) from exc
    if manifest.format_version != INDEX_FORMAT_VERSION:
        raise StaleIndex(
            f"index at {vdir} has format {manifest.format_version}, this ragcds reads "
            f"{INDEX_FORMAT_VERSION} — rebuild it: {build_hint(index_root(vdir), manifest.embedder.ref)}"
        )
    return manifest


def verify_version(vdir: Path, manifest: Manifest | None = None) -> list[str]:
    """Problems with a version's files against its manifest (empty when every file is intact)."""
    vdir = Path(vdir)
    manifest = manifest if manifest is not None else read_manifest(vdir)
    return file_problems(vdir, manifest.files)


def check_compatible(manifest: Manifest, root: Path, embedder_id: str | None) -> None:
    """Refuse a version built with another embedder than ``embedder_id`` or another BM25 tokenizer."""
    built_with = manifest.embedder
    if embedder_id is not None and built_with.id != embedder_id:
        raise StaleIndex(
            f"index {root} was built with embedder {built_with.id} but {embedder_id} is loaded — pass "
            f"the embedder it was built with: --embedder {built_with.ref} (or "
            f"RAGCDS_EMBEDDER), or rebuild it with yours: {build_hint(root)} --embedder REF"
        )
    if manifest.tokenizer != TOKENIZER_ID:
        raise StaleIndex(
            f"index {root} was built with BM25 tokenizer {manifest.tokenizer or '(none)'}, this ragcds uses "
            f"{TOKENIZER_ID} — rebuild it: {build_hint(root, built_with.ref)}"
        )


def load_index(index_dir: Path, embedder_id: str | None = None) -> LoadedIndex:
    """Load the live version, checking every loaded file against the manifest's sha256 (each file is read
    once: hashed and parsed from the same bytes). Refuses a version built with another embedder than
    ``embedder_id``."""
    vdir = resolve_version_dir(Path(index_dir))
    return open_version(vdir, read_manifest(vdir), embedder_id)


@contextlib.contextmanager
def _damage_is_corrupt(vdir: Path) -> Iterator[None]:
    """Mismatched or unparsable version files → CorruptIndex naming the recovery."""
    root = index_root(vdir)
    try:
        yield
    except Mismatch as exc:
        raise CorruptIndex(
            f"version {vdir.name} of {root} is damaged: {exc} — {recovery_hint(root, vdir.name)}"
        ) from exc
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise CorruptIndex(
            f"index files in {vdir} are damaged ({exc}) — {recovery_hint(root, vdir.name)}"
        ) from exc


def read_chunks(vdir: Path, manifest: Manifest) -> list[Chunk]:
    """The version's chunks, from bytes checked against the manifest."""
    with _damage_is_corrupt(vdir):
        raw = verified_bytes(vdir, "chunks.jsonl", manifest.files)
        return [Chunk.from_dict(json.loads(x)) for x in raw.decode("utf-8").splitlines() if x.strip()]


def read_dense(vdir: Path, manifest: Manifest) -> DenseIndex:
    """The version's FAISS index, from bytes checked against the manifest."""
    with _damage_is_corrupt(vdir):
        return DenseIndex.from_bytes(verified_bytes(vdir, "dense.faiss", manifest.files))


def open_version(vdir: Path, manifest: Manifest, embedder_id: str | None = None,
                 chunks: list[Chunk] | None = None) -> LoadedIndex:
    """A version ready for search; ``chunks`` already read (and checked) by the caller are not read again."""
    root = index_root(vdir)
    check_compatible(manifest, root, embedder_id)
    chunks = chunks if chunks is not None else read_chunks(vdir, manifest)
    dense = read_dense(vdir, manifest)
    with _damage_is_corrupt(vdir):
        bm25 = [n for n in manifest.files if n.startswith("bm25/")]
        if not bm25:
            raise Mismatch("the manifest lists no bm25 files")
        for name in bm25:
            verified_bytes(vdir, name, manifest.files)
        lexical = LexicalIndex.load(vdir / "bm25")
    if not (len(chunks) == dense.size == manifest.chunk_count):
        raise CorruptIndex(
            f"index in {vdir} is inconsistent ({len(chunks)} chunks, {dense.size} vectors, manifest says "
            f"{manifest.chunk_count}) — {recovery_hint(root, vdir.name)}"
        )
    if dense.dim != manifest.embedder.dim:
        raise CorruptIndex(
            f"vector dimension {dense.dim} ≠ manifest {manifest.embedder.dim} — {recovery_hint(root, vdir.name)}"
        )
    return LoadedIndex(path=vdir, manifest=manifest, chunks=chunks, dense=dense, lexical=lexical)
