"""Load on `ragcds serve`: N concurrent clients sending search and extractive ask requests for a fixed time.

Each cell runs the same requests twice: in-process (threads calling the Service the routes call: the baseline)
and over HTTP against a `ragcds serve` subprocess on loopback (one keep-alive httpx client per thread). Reports
requests/s, p50 and p95 latency and the HTTP/in-process ratios. Every question is new to both query-vector
caches (dev questions and section-title questions, cycled in an order longer than the cache). Any failed request
fails the benchmark.

    python bench/serve.py --index index --clients 1,8,32 --seconds 10
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from itertools import count
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import SHARED  # noqa: E402

KINDS = ("search", "ask")


def questions(chunks) -> list[str]:
    """Dev-set questions (when ../shared is there) plus one question per section title of the index."""
    qs: list[str] = []
    for name in ("dev.jsonl", "dev2.jsonl"):
        path = SHARED / "eval" / name
        if path.exists():
            qs += [json.loads(x)["question"] for x in path.read_text().splitlines() if x.strip()]
    titles = dict.fromkeys(c.title for c in chunks if c.section)
    qs += [f"What does the guideline say about {t.lower()}?" for t in titles]
    return list(dict.fromkeys(qs))


def percentile(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1] if len(values) > 1 else values[0]


def run_cell(clients: int, seconds: float, call: Callable[[int], Callable[[str], None]], next_q: Iterator[str]) -> dict:
    """`clients` threads call call(thread)(question) until time is up; latencies in ms, failures kept."""
    lat: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def worker(i: int) -> None:
        one = call(i)
        while time.perf_counter() < stop:
            with lock:
                q = next(next_q)
            t0 = time.perf_counter()
            try:
                one(q)
            except Exception as exc:  # noqa: BLE001 - counted and reported; the run fails
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}"[:300])
                continue
            with lock:
                lat.append((time.perf_counter() - t0) * 1000)

    t_start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t_start
    return {"n": len(lat), "rps": len(lat) / wall, "p50": percentile(lat, 50) if lat else float("nan"),
            "p95": percentile(lat, 95) if lat else float("nan"), "errors": errors}


def in_process(service, kind: str):
    from ragcds.serve.engine import AskParams

    def make(_: int):
        if kind == "search":
            return lambda q: service.search(q, 5, "hybrid")
        return lambda q: service.ask(AskParams(q))

    return make


def over_http(url: str, kind: str, clients: list):
    import httpx

    def make(_: int):
        client = httpx.Client(base_url=url, timeout=120)
        clients.append(client)
        path, extra = ("/v1/search", {"k": 5}) if kind == "search" else ("/v1/ask", {})

        def one(q: str) -> None:
            res = client.post(path, json={"question": q, **extra})
            if res.status_code != 200:
                raise RuntimeError(f"HTTP {res.status_code}: {res.text[:200]}")
            res.json()

        return one

    return make


def start_server(index: Path, env: dict) -> tuple[subprocess.Popen, str, Path]:
    log = Path(env["RAGCDS_HOME"]) / "serve.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "ragcds.cli.main", "serve", "--index", str(index), "--port", "0",
           "--backend", "extractive"]
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        for line in log.read_text().splitlines():
            if line.startswith("open http://"):
                return proc, line.split()[1].rstrip("/"), log
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"the server did not start:\n{log.read_text()}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, default=REPO / "index")
    ap.add_argument("--clients", default="1,8,32")
    ap.add_argument("--seconds", type=float, default=10.0, help="per cell")
    ap.add_argument("--kinds", default="search,ask")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="ragcds-bench-serve-"))
    os.environ["RAGCDS_HOME"] = str(home)  # both sides write their audit logs here, not to ~/.ragcds
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}

    from ragcds.generate.backends import load_generator
    from ragcds.serve.engine import IndexHolder, Service, set_torch_threads

    service = Service(IndexHolder(args.index), load_generator(None, "extractive"))
    threads = set_torch_threads(None, "extractive")  # what `ragcds serve` sets for the extractive backend
    qs = questions(service.holder.snapshot().retriever.chunks)
    proc, url, log = start_server(args.index, env)
    q_local = (qs[i % len(qs)] for i in count())
    q_http = (qs[i % len(qs)] for i in count())
    rows, http_clients = [], []
    try:
        for kind in [k for k in args.kinds.split(",") if k in KINDS]:
            for c in (int(x) for x in args.clients.split(",")):
                run_cell(1, 1.0, in_process(service, kind), q_local)  # warm-up, not reported
                run_cell(1, 1.0, over_http(url, kind, http_clients), q_http)
                base = run_cell(c, args.seconds, in_process(service, kind), q_local)
                http = run_cell(c, args.seconds, over_http(url, kind, http_clients), q_http)
                rows.append({"kind": kind, "clients": c, "in_process": base, "http": http})
    finally:
        for client in http_clients:
            client.close()
        proc.terminate()
        proc.wait(30)
    failures = [e for r in rows for side in ("in_process", "http") for e in r[side]["errors"]]
    if args.json:
        print(json.dumps({"questions": len(qs), "seconds": args.seconds, "rows": rows}, indent=1))
    else:
        report(rows, len(qs), args.seconds, threads)
    if failures:
        print(f"FAILED: {len(failures)} requests failed, e.g. {failures[0]}", file=sys.stderr)
        return 1
    return 0


def report(rows: list[dict], n_questions: int, seconds: float, threads: int | None) -> None:
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"ragcds serve on loopback vs in-process Service calls; {seconds:.0f} s per cell, {n_questions} distinct "
          f"questions cycled; ask = extractive backend, audit log on; cpus={os.cpu_count()}, torch threads "
          f"{threads} on both sides, load average at the end {load}")
    head = (f"{'kind':<7}{'clients':>8} | {'in-proc r/s':>11}{'p50 ms':>8}{'p95 ms':>8} | {'HTTP r/s':>9}"
            f"{'p50 ms':>8}{'p95 ms':>8} | {'r/s ratio':>9}{'p50 ratio':>10}{'failed':>7}")
    print(head)
    print("-" * len(head))
    for r in rows:
        b, h = r["in_process"], r["http"]
        failed = len(b["errors"]) + len(h["errors"])
        print(f"{r['kind']:<7}{r['clients']:>8} | {b['rps']:>11.1f}{b['p50']:>8.1f}{b['p95']:>8.1f} | "
              f"{h['rps']:>9.1f}{h['p50']:>8.1f}{h['p95']:>8.1f} | {h['rps'] / b['rps']:>9.2f}"
              f"{h['p50'] / b['p50']:>10.2f}{failed:>7}")
    print("r/s ratio = HTTP / in-process throughput (1.0 = no HTTP cost); p50 ratio = HTTP / in-process median.")


if __name__ == "__main__":
    raise SystemExit(main())
