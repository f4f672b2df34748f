"""Where things are in an index directory: the CURRENT pointer, version folders and their ids.

    INDEX/CURRENT            id of the live version
    INDEX/versions/<id>/     one version (manifest.json written last)

Version ids are folder names directly inside ``INDEX/versions`` — never paths. Nothing here loads an index.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from ragcds.errors import BadVersionId, IndexNotFound
from ragcds.index.manifest import Manifest

MANIFEST = "manifest.json"
CURRENT = "CURRENT"
VERSIONS = "versions"


_VERSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def build_hint(index_dir: Path, embedder_ref: str | None = None) -> str:
    """The command that rebuilds the index at ``index_dir`` (PDF: the guideline file), with the embedder the
    index was built with when that was not the default one."""
    extra = f" --embedder {embedder_ref}" if embedder_ref and embedder_ref != "default" else ""
    return f"ragcds ingest PDF --index {index_dir}{extra}"


def index_root(path: Path) -> Path:
    """The index directory a version directory belongs to (``INDEX/versions/<id>`` → ``INDEX``)."""
    path = Path(path)
    if path.parent.name == VERSIONS and not (path / CURRENT).exists():
        return path.parent.parent
    return path


def check_version_id(index_dir: Path, version_id: str) -> str:
    """``version_id`` if it names a folder directly inside ``INDEX/versions`` (no path, no '..')."""
    vid = str(version_id).strip()
    inside = False
    if _VERSION_ID.fullmatch(vid):
        vroot = (Path(index_dir) / VERSIONS).resolve()
        inside = (vroot / vid).resolve().parent == vroot
    if not inside:
        raise BadVersionId(
            f"{version_id!r} is not a version id of {index_dir} (a version id is a folder name in "
            f"{Path(index_dir) / VERSIONS}, not a path) — list them: ragcds index versions --index {index_dir}"
        )
    return vid


def version_path(index_dir: Path, version_id: str) -> Path:
    """``INDEX/versions/<id>`` for a checked version id."""
    return Path(index_dir) / VERSIONS / check_version_id(index_dir, version_id)


def require_index(index_dir: Path) -> Path:
    """Refuse a path that holds no index (a mistyped --index), without creating anything."""
    index_dir = Path(index_dir)
    if not ((index_dir / CURRENT).exists() or (index_dir / VERSIONS).is_dir()):
        raise IndexNotFound(
            f"no index at {index_dir} (no CURRENT, no versions/) — check --index, or build one: "
            f"{build_hint(index_dir)}"
        )
    return index_dir


def current_version(index_dir: Path) -> str | None:
    """The live version id (None before the first build)."""
    try:
        return (index_dir / CURRENT).read_text().strip() or None
    except FileNotFoundError:
        return None


def list_versions(index_dir: Path) -> list[Manifest]:
    """The manifest of every complete version (unparsed ones skipped), with its folder name as version_id."""
    vroot = index_dir / VERSIONS
    if not vroot.is_dir():
        return []
    out = []
    for d in sorted(vroot.iterdir()):
        if not _VERSION_ID.fullmatch(d.name) or not (d / MANIFEST).exists():
            continue
        try:
            manifest = json.loads((d / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # an unreadable manifest: not a usable version (`ragcds index verify` reports it)
        if isinstance(manifest, dict):
            out.append(dataclasses.replace(Manifest.from_dict(manifest), version_id=d.name))  # folder name = id
    return out
