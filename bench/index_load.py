"""Cost of the integrity check on load: time to open an index with and without sha256 verification.

    python bench/index_load.py [--index DIR] [--repeat 15]

Baseline (measured in the same run): the loading code without verification — chunks.jsonl parsed line by
line, FAISS read from its file, bm25s arrays loaded. Verified: ``store.load_index`` as search and ask use it
(each loaded file read once, hashed and parsed from the same bytes). Also: ``ragcds index verify`` of the
live version (every file, pages.jsonl and structure.json too). Prints medians, the extra milliseconds and
the ratio verified / baseline.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO, require  # noqa: E402


def unverified_load(index_dir: Path) -> int:
    """What load_index did before the integrity check (same parsing, no hashing)."""
    from ragcds.files import read_jsonl
    from ragcds.index import store
    from ragcds.index.dense import DenseIndex
    from ragcds.index.lexical import LexicalIndex
    from ragcds.ingest.chunk import Chunk

    vdir = store.resolve_version_dir(index_dir)
    store.read_manifest(vdir)
    chunks = [Chunk.from_dict(d) for d in read_jsonl(vdir / "chunks.jsonl")]
    DenseIndex.load(vdir / "dense.faiss")
    LexicalIndex.load(vdir / "bm25")
    return len(chunks)


def median_ms(fn, repeat: int) -> float:
    fn()  # warm the page cache and imports
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, default=REPO / "index", help="a built index (default: ./index)")
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    from ragcds.index import store, versions

    require(args.index / "CURRENT")
    vdir = store.resolve_version_dir(args.index)
    loaded = sum(p.stat().st_size for n in ("chunks.jsonl", "dense.faiss") for p in [vdir / n])
    loaded += sum(p.stat().st_size for p in (vdir / "bm25").iterdir())
    total = sum(p.stat().st_size for p in vdir.rglob("*") if p.is_file())
    base = median_ms(lambda: unverified_load(args.index), args.repeat)
    verified = median_ms(lambda: store.load_index(args.index), args.repeat)
    full = median_ms(lambda: versions.verify(args.index), args.repeat)
    print(f"index {vdir} ({store.read_manifest(vdir).chunk_count} chunks)")
    print(f"open without verification (baseline): {base:7.1f} ms  ({loaded / 1e6:.1f} MB loaded)")
    print(f"open with sha256 verification:        {verified:7.1f} ms  (+{verified - base:.1f} ms, "
          f"ratio {verified / base:.2f}x)")
    print(f"ragcds index verify (all {total / 1e6:.1f} MB):  {full:7.1f} ms")


if __name__ == "__main__":
    main()
