"""File integrity of an index version: each file's size and sha256 against what its manifest records.

A file is read once: :func:`verified_bytes` hashes the bytes it returns, so the caller parses exactly what
was checked (no second read that could differ from the hashed one).
"""

from __future__ import annotations

import hashlib
from pathlib import Path


class Mismatch(Exception):
    """A file differs from the size/sha256 its manifest records (or cannot be checked)."""


def path_inside(vdir: Path, name: str) -> bool:
    root = Path(vdir).resolve()
    return root in (root / name).resolve().parents


def verified_bytes(vdir: Path, name: str, files: dict) -> bytes:
    """The bytes of one version file, read once and checked against the manifest's size and sha256."""
    expected = files.get(name)
    if not isinstance(expected, dict) or "sha256" not in expected:
        raise Mismatch(f"{name} has no sha256 in the manifest")
    path = Path(vdir) / name
    if not path_inside(vdir, name):
        raise Mismatch(f"{name} is outside the version folder")
    if not path.is_file():
        raise Mismatch(f"{name} is missing")
    data = path.read_bytes()
    if len(data) != expected.get("bytes", len(data)) or hashlib.sha256(data).hexdigest() != expected["sha256"]:
        raise Mismatch(f"{name} does not match the sha256 recorded in the manifest (changed after the build)")
    return data


def file_problems(vdir: Path, files: object) -> list[str]:
    """Every file listed in a manifest's ``files`` that is missing, unreadable or changed (empty: intact)."""
    if not isinstance(files, dict) or not files:
        return ["the manifest lists no file checksums"]
    problems = []
    for name in sorted(files):
        try:
            verified_bytes(vdir, name, files)
        except Mismatch as exc:
            problems.append(str(exc))
        except OSError as exc:
            problems.append(f"{name} cannot be read ({exc.strerror or exc})")
    return problems
