"""`ragcds serve`: the HTTP API and the clinician's web page, offline, on this machine."""

from __future__ import annotations

import errno
import ipaddress
import socket
from pathlib import Path
from typing import Annotated

import typer

from ragcds.cli.common import IndexOpt, console, handle_errors
from ragcds.config import DEFAULT_INDEX_DIR
from ragcds.errors import RagcdsError


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, or a one-line error naming the fix (port in use, unknown address)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise RagcdsError(f"cannot listen on {host!r} ({exc.strerror}) — pass --host 127.0.0.1 or this "
                          "machine's network address") from exc
    family, kind, proto, _, address = infos[0]
    # proto must be IPPROTO_TCP (not 0): asyncio sets TCP_NODELAY only on such sockets, and without it every
    # keep-alive response waits ~40 ms for the client's delayed ACK (Nagle)
    sock = socket.socket(family, kind, proto or socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise RagcdsError(f"port {port} on {host} is in use — pass another, e.g. --port {port + 1}, or stop "
                              "the other server") from exc
        raise RagcdsError(f"cannot listen on {host}:{port} ({exc.strerror}) — pick another --host/--port") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def url_of(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


@handle_errors
def serve(
    index: IndexOpt = DEFAULT_INDEX_DIR,
    host: Annotated[str, typer.Option(envvar="RAGCDS_HOST", help="Address to listen on; 0.0.0.0 for the "
                                      "clinic's network (then set --token).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="RAGCDS_PORT", min=0, max=65535, help="TCP port.")] = 8080,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", envvar="RAGCDS_MODEL",
                     help="HF folder, .gguf file, http(s):// server URL, or smollm2 / gemma3-270m."),
    ] = None,
    backend: Annotated[str, typer.Option(help="auto, transformers, openai, llamacpp or extractive.")] = "auto",
    model_name: Annotated[
        str | None,
        typer.Option(envvar="RAGCDS_OPENAI_MODEL", help="Model name sent to an OpenAI-compatible server."),
    ] = None,
    policy: Annotated[str, typer.Option(envvar="RAGCDS_POLICY", help="Default for treatment/dosing questions: "
                                        "quote the UCG verbatim, or refuse.")] = "quote",
    token: Annotated[
        str | None,
        typer.Option(envvar="RAGCDS_TOKEN", show_default=False,
                     help="Require 'Authorization: Bearer TOKEN' on the API (the page asks for it once)."),
    ] = None,
    no_log: Annotated[bool, typer.Option("--no-log", help="Do not write the audit log (or RAGCDS_LOG=0).")] = False,
    threads: Annotated[
        int | None,
        typer.Option(envvar="RAGCDS_THREADS", min=1, show_default=False,
                     help="Torch threads per call (default: 1 unless a model runs in-process; see docs/serve.md)."),
    ] = None,
) -> None:
    """Serve the HTTP API and the clinician's web page (offline; localhost by default)."""
    import uvicorn

    from ragcds import audit
    from ragcds.generate.backends import backend_names
    from ragcds.serve import library
    from ragcds.serve.app import create_app
    from ragcds.serve.engine import IndexHolder, Service, set_torch_threads

    if backend not in ("auto", *backend_names()):
        raise RagcdsError(f"unknown --backend {backend!r}; choose one of auto, {', '.join(backend_names())}")
    if policy not in ("quote", "refuse"):
        raise RagcdsError(f"unknown --policy {policy!r}; choose quote or refuse")
    token = token or None
    sock = bind(host, port)
    console.print(f"loading the index in {index} and the model …", soft_wrap=True)
    holder = IndexHolder(Path(index))
    generator = library.load_generator(model, backend, **({"model_name": model_name} if model_name else {}))
    torch_threads = set_torch_threads(threads, generator.backend)
    service = Service(holder, generator, audit=not no_log)
    app = create_app(service, token=token, policy=policy)
    real_port = sock.getsockname()[1]
    snap = holder.snapshot()
    console.print(f"ragcds serve: index version {snap.version_id} ({len(snap.retriever.chunks)} passages), "
                  f"model {generator.backend}:{generator.model_id}"
                  + (f", torch threads {torch_threads}" if torch_threads else ""), soft_wrap=True)
    if not is_loopback(host) and not token:
        console.print("[yellow]warning: listening beyond this machine without --token — anyone on the network "
                      "can use the API; set --token or RAGCDS_TOKEN[/yellow]", soft_wrap=True)
    logging_on = not no_log and audit.logging_enabled()
    console.print(f"audit log: {'on' if logging_on else 'OFF'} · API docs: {url_of(host, real_port)}docs",
                  soft_wrap=True)
    console.print(f"open {url_of(host, real_port)} in a browser · Ctrl+C stops", soft_wrap=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl+C it handled: stopping is the normal way out
        pass
    console.print("ragcds serve: stopped")


def register(app: typer.Typer) -> None:
    app.command()(serve)
