"""The `ragcds serve` command: starts as a real process, stops on Ctrl+C, fails in one line."""

from __future__ import annotations

import signal
import socket
import subprocess
import time

import httpx
import pytest
from typer.testing import CliRunner

from ragcds.cli.main import app as cli_app
from ragcds.cli.serve import bind, is_loopback
from tests.reindex_cli_helper import cli_command, cli_env
from tests.servekit import small_index

runner = CliRunner()


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    return small_index(tmp_path_factory.mktemp("serve-cli"))


def test_serve_starts_answers_and_stops_on_ctrl_c(index_dir, tmp_path):
    log = tmp_path / "serve.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            cli_command("serve", "--index", str(index_dir), "--port", "0"),
            env=cli_env(RAGCDS_HOME=str(tmp_path / "home")), stdout=subprocess.DEVNULL, stderr=err,
        )
    try:
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline and proc.poll() is None:
            for line in log.read_text().splitlines():
                if line.startswith("open http://"):
                    url = line.split()[1].rstrip("/")
            time.sleep(0.1)
        assert url, log.read_text()
        health = httpx.get(f"{url}/v1/health").json()
        assert health["model"]["backend"] == "extractive" and health["index"]["chunks"] > 10
        assert "<title>ragcds" in httpx.get(f"{url}/").text
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert "index version" in text and "audit log: on" in text and "Traceback" not in text
    assert text.strip().endswith("ragcds serve: stopped")


def test_port_in_use_is_one_line_naming_the_fix(index_dir):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        res = runner.invoke(cli_app, ["serve", "--index", str(index_dir), "--port", str(port)])
    assert res.exit_code == 1
    assert res.stderr.strip() == f"error: port {port} on 127.0.0.1 is in use — pass another, e.g. --port {port + 1}, " \
                                 "or stop the other server"


def test_missing_index_and_bad_options_fail_before_serving(tmp_path):
    res = runner.invoke(cli_app, ["serve", "--index", str(tmp_path / "none"), "--port", "0"])
    last = res.stderr.strip().splitlines()[-1]
    assert res.exit_code == 1 and last.startswith("error: no index at") and "ragcds ingest" in last
    res = runner.invoke(cli_app, ["serve", "--backend", "nope", "--port", "0"])
    assert res.exit_code == 1 and res.stderr.startswith("error: unknown --backend 'nope'; choose one of auto, ")


def test_loopback_detection():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.20") and not is_loopback("clinic-box")


def test_listening_socket_is_tcp_so_responses_are_not_delayed():
    """asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP; with proto 0 every keep-alive
    response waited ~40 ms for the client's delayed ACK."""
    with bind("127.0.0.1", 0) as sock:
        assert sock.proto == socket.IPPROTO_TCP and sock.getsockname()[1] > 0
