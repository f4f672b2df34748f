"""Helpers of the `ragcds serve` tests: a small generated index and a real uvicorn server on a free port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from typer.testing import CliRunner

from ragcds.cli.main import app as cli_app
from ragcds.serve.app import create_app
from ragcds.serve.engine import IndexHolder, Service
from tests.pdfgen import DEFAULT_SECTIONS, SectionSpec, make_guideline_pdf

# Questions for the small generated guideline. Its BM25 scores are low (a few dozen chunks), so the in-scope
# questions repeat its wording to clear the scope policy's thresholds (docs/policy.md).
IN_SCOPE_Q = "Severe malaria is a medical emergency: should I check blood glucose for hypoglycaemia?"
TREATMENT_Q = "How should I treat severe malaria with IV artesunate at 0, 12 and 24 hours?"
OFF_TOPIC_Q = "What is the capital of France?"


def ingest(pdf: Path, index_dir: Path) -> None:
    """`ragcds ingest` with the fake embedder (a new version becomes live)."""
    result = CliRunner().invoke(cli_app, ["ingest", str(pdf), "--index", str(index_dir), "--embedder", "fake:64"])
    assert result.exit_code == 0, result.output


def small_index(folder: Path, sections: tuple[SectionSpec, ...] = DEFAULT_SECTIONS) -> Path:
    """A guideline-shaped PDF indexed with the fake embedder."""
    index_dir = folder / "index"
    ingest(make_guideline_pdf(folder / "guide.pdf", sections), index_dir)
    return index_dir


def service(index_dir: Path, generator, *, audit: bool = True) -> Service:
    return Service(IndexHolder(index_dir), generator, audit=audit)


@contextmanager
def running(app, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a thread on a free port; yields its base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY, as `ragcds serve`
    sock.bind((host, 0))
    sock.listen(256)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@contextmanager
def serving(index_dir: Path, generator, *, token: str | None = None,
            audit: bool = True) -> Iterator[tuple[str, Service]]:
    svc = service(index_dir, generator, audit=audit)
    with running(create_app(svc, token=token)) as url:
        yield url, svc
