"""Cold start of the CLI: wall time and peak memory of one-off `ragcds search` and `ragcds ask` (extractive),
each in a fresh process, against the same search through the torch (sentence-transformers) query embedder
measured in the same run.

    python bench/cli.py [--index DIR] [--repeat 3]

The index must exist (build it with `ragcds ingest`). Target: <= 2 s and <= 300 MB for search and ask.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TARGET_S, TARGET_MB = 2.0, 300.0
QUESTION = "What are the signs of severe malaria in a child?"
TORCH_SEARCH = (
    "import sys; from ragcds.index.embedders import load_embedder; from ragcds.retrieve import HybridRetriever; "
    "r = HybridRetriever.open(sys.argv[1], embedder=load_embedder('default')); "
    "print(r.search(sys.argv[2], k=5)[0].citation())"
)


def run(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of one child process, its own rusage (os.wait4), not the bench's."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy())
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {err.strip()[-400:]}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, default=Path(os.environ.get("RAGCDS_INDEX", "index")))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if not (args.index / "CURRENT").exists() and not (args.index / "manifest.json").exists():
        raise SystemExit(f"skipped: no index at {args.index} — build it: ragcds ingest PDF --index {args.index}")
    cli = [sys.executable, "-m", "ragcds.cli.main"]
    idx = ["--index", str(args.index)]
    cases = {
        "ragcds search": cli + ["search", QUESTION, *idx],
        "ragcds search --sections": cli + ["search", QUESTION, "--sections", *idx],
        "ragcds ask (extractive)": cli + ["ask", QUESTION, "--backend", "extractive", *idx],
        "baseline: search via torch embedder": [sys.executable, "-c", TORCH_SEARCH, str(args.index), QUESTION],
    }
    rows = {}
    for name, cmd in cases.items():
        print(f"running {name} x{args.repeat} ...", file=sys.stderr, flush=True)
        runs = [run(cmd) for _ in range(args.repeat)]
        rows[name] = (statistics.median(w for w, _ in runs), max(m for _, m in runs))
    print(f"\n| command (cold, fresh process) | wall s (median of {args.repeat}) | peak RSS MB |")
    print("|---|---|---|")
    for name, (wall, mb) in rows.items():
        print(f"| {name} | {wall:.2f} | {mb:.0f} |")
    base_wall, base_mb = rows["baseline: search via torch embedder"]
    search_wall, search_mb = rows["ragcds search"]
    print(f"\nsearch wall time / torch baseline: {search_wall / base_wall:.2f}x; "
          f"peak memory: {search_mb / base_mb:.2f}x")
    for name in ("ragcds search", "ragcds search --sections", "ragcds ask (extractive)"):
        wall, mb = rows[name]
        ok = wall <= TARGET_S and mb <= TARGET_MB
        print(f"target {name} <= {TARGET_S:.0f} s and <= {TARGET_MB:.0f} MB: {'met' if ok else 'NOT met'} "
              f"({wall:.2f} s, {mb:.0f} MB)")


if __name__ == "__main__":
    main()
