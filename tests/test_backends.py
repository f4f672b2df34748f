"""Backend registry, auto inference, missing optional packages, and a fake OpenAI server over real HTTP."""

from __future__ import annotations

import builtins
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from ragcds.errors import BackendUnavailable, ModelNotFound
from ragcds.generate import backends
from ragcds.generate.backends import infer_backend, load_generator, register_backend
from ragcds.generate.base import GenerationRequest
from ragcds.generate.formats import grammar, parse_output
from tests.fakes import FakeGenerator


def test_auto_inference(tmp_path, monkeypatch):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    (tmp_path / "hf").mkdir()
    assert infer_backend(None) == "extractive"
    assert infer_backend("http://localhost:8000/v1") == "openai"
    assert infer_backend(str(tmp_path / "hf")) == "transformers"
    monkeypatch.setattr(backends, "llama_cpp_available", lambda: False)
    assert infer_backend(str(gguf)) == "transformers"
    monkeypatch.setattr(backends, "llama_cpp_available", lambda: True)
    assert infer_backend(str(gguf)) == "llamacpp"
    with pytest.raises(ModelNotFound, match="no model at"):
        infer_backend(str(tmp_path / "missing"))


def test_registry_and_default_extractive():
    fake = FakeGenerator()
    register_backend("fake-reg", lambda ref, **o: fake)
    assert load_generator("anything", backend="fake-reg") is fake
    assert load_generator(None).backend == "extractive"
    with pytest.raises(BackendUnavailable, match="unknown backend"):
        load_generator(None, backend="nope")


def test_transformers_unknown_path_is_one_line_error(tmp_path):
    with pytest.raises(ModelNotFound, match="no model at"):
        load_generator(str(tmp_path / "nowhere"), backend="transformers")


def test_llamacpp_missing_package_has_install_hint(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "llama_cpp":
            raise ImportError("No module named 'llama_cpp'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    with pytest.raises(BackendUnavailable, match=r"pip install 'ragcds\[llamacpp\]'"):
        load_generator(str(gguf), backend="llamacpp")


def test_one_grammar_serves_xgrammar_and_llama_cpp_gbnf():
    assert grammar("xml").startswith('root ::= "<r>"') and grammar("array") != grammar("xml")


def test_missing_xgrammar_has_install_hint(monkeypatch):
    from ragcds.generate.backends.transformers_backend import TransformersGenerator

    gen = TransformersGenerator.__new__(TransformersGenerator)
    gen._compiled = {}
    real_import = builtins.__import__
    monkeypatch.setattr(
        builtins,
        "__import__",
        lambda n, *a, **k: (
            (_ for _ in ()).throw(ImportError(n)) if n == "xgrammar" else real_import(n, *a, **k)
        ),
    )
    with pytest.raises(BackendUnavailable, match="xgrammar"):
        gen.compiled_grammar("xml")


class Server:
    """A real HTTP server on 127.0.0.1 answering like an OpenAI-compatible chat endpoint."""

    def __init__(self, reply: str):
        self.requests: list[tuple[str, dict, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, data: dict):
                body = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                outer.requests.append((self.path, {}, dict(self.headers)))
                self._send({"data": [{"id": "served-model"}]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((self.path, body, dict(self.headers)))
                self._send({"choices": [{"message": {"role": "assistant", "content": reply}}]})

        self.httpd = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server(
        "<r><t>urgent</t><c>Malaria [1]</c><cf>low</cf><sg>Refer [1]</sg><ns>Review</ns><rf>Coma</rf></r>"
    )
    yield s
    s.close()


def test_openai_backend_sends_guided_decoding(server, monkeypatch):
    monkeypatch.setenv("RAGCDS_OPENAI_API_KEY", "sk-test")
    gen = load_generator(server.url)
    assert gen.backend == "openai"
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    text = gen.generate(GenerationRequest(messages=msgs, format="xml", max_new_tokens=64))
    assert parse_output(text, "xml", [])[1]
    path, body, headers = server.requests[-1]
    assert path == "/v1/chat/completions" and body["model"] == "served-model" and body["messages"] == msgs
    assert (
        body["guided_regex"].startswith("<r><t>(emergency|urgent|routine)</t>") and body["max_tokens"] == 64
    )
    assert headers["Authorization"] == "Bearer sk-test"
    gen.generate(GenerationRequest(messages=msgs, format="array"))
    body = server.requests[-1][1]
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"]["minItems"] == 6 and "guided_regex" not in body
    gen.generate(GenerationRequest(messages=msgs, format="prose"))
    assert "response_format" not in server.requests[-1][1]


def test_openai_model_name_option_and_grammar_mode(server):
    gen = load_generator(server.url + "/chat/completions", model_name="mine", guided="grammar")
    gen.generate(GenerationRequest(messages=[{"role": "user", "content": "U"}], format="xml"))
    body = server.requests[-1][1]
    assert body["model"] == "mine" and body["guided_grammar"] == grammar("xml")
    assert all(p != "/v1/models" for p, _, _ in server.requests)


def test_openai_unreachable_is_backend_unavailable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gen = load_generator(f"http://127.0.0.1:{port}/v1", model_name="m")
    with pytest.raises(BackendUnavailable, match="cannot reach .* is the server running"):
        gen.generate(GenerationRequest(messages=[{"role": "user", "content": "U"}]))


def _pending_connections(srv: socket.socket) -> int:
    srv.settimeout(0.2)
    n = 0
    try:
        while True:
            conn, _ = srv.accept()
            conn.close()
            n += 1
    except TimeoutError:
        return n


def test_openai_hung_server_times_out_once_and_names_the_option():
    from ragcds.generate.backends.openai_backend import CONNECT_TIMEOUT, DEFAULT_TIMEOUT, OpenAIGenerator

    default = OpenAIGenerator("http://127.0.0.1:9/v1")
    assert (default.timeout.connect, default.timeout.read) == (CONNECT_TIMEOUT, DEFAULT_TIMEOUT) == (10.0, 120.0)
    with socket.socket() as srv:  # accepts (kernel backlog), never replies
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        gen = load_generator(f"http://127.0.0.1:{srv.getsockname()[1]}/v1", timeout=0.5)
        with pytest.raises(BackendUnavailable, match=r"no reply within 0.5 s — wait longer: --timeout 60 \(or RAGCD"):
            gen.generate(GenerationRequest(messages=[{"role": "user", "content": "U"}]))
        # the model listing timed out and the request stopped there: no second wait on /chat/completions
        assert _pending_connections(srv) == 1


def test_backend_messages_name_options_that_exist():
    import typer.main

    from ragcds.cli.main import app

    ask = typer.main.get_command(app).commands["ask"]
    names = {opt for p in ask.params for opt in p.opts}
    envs = {p.envvar for p in ask.params if getattr(p, "envvar", None)}
    assert {"--timeout", "--model-name", "--model", "--embedder"} <= names
    assert {"RAGCDS_TIMEOUT", "RAGCDS_OPENAI_MODEL", "RAGCDS_EMBEDDER"} <= envs
