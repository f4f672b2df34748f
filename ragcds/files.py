"""File helpers shared by every stage: one JSONL reader, one file sha256, one atomic write, one reader of the
reviewed data tables shipped in ``ragcds/data``."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path


def read_jsonl(path: Path, *, skip_bad: bool = False) -> list[dict]:
    """One JSON object per non-blank line. ``skip_bad``: lines that are not JSON (a last line cut by an
    interruption) are skipped instead of raising."""
    out = []
    with Path(path).open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                if not skip_bad:
                    raise
    return out


def package_data(name: str) -> str:
    """The text of a data file shipped in ``ragcds/data`` (``triage_signs.tsv``, ``lexicon.tsv``, …)."""
    return resources.files("ragcds").joinpath("data", name).read_text(encoding="utf-8")


def table_rows(text: str) -> Iterator[tuple[int, dict[str, str]]]:
    """(row number, row) for each row of a tab-separated table with a header line; '#' lines are comments.
    Rows are numbered as a reviewer counts them: the header is row 1."""
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    yield from enumerate(csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE), 2)


def jsonl_text(rows: Iterable[object]) -> str:
    """Rows as JSONL text (UTF-8 kept, one object per line)."""
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (best effort: some filesystems refuse a directory fsync)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``: readers see the old or the new
    content, never a part."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
