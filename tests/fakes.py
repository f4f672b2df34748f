"""Fakes for unit tests only. Both depend on their input, so rankings and prompts are testable."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from ragcds.generate.base import GenerationRequest


class FakeEmbedder:
    """Hashes words into a fixed-size bag-of-words vector (L2-normalised): texts sharing words are close."""

    def __init__(self, dim: int = 64, salt: str = ""):
        self.dim = dim
        self.salt = salt
        self.id = f"fake-hash-{dim}{salt}"
        self.calls: list[int] = []  # number of texts per embed() call

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for w in re.findall(r"[a-z0-9]+", text.lower()):
            h = int(hashlib.md5((self.salt + w).encode()).hexdigest(), 16)
            v[h % self.dim] += 1.0 if (h >> 8) & 1 else -1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def embed(self, texts: Sequence[str], progress=None) -> np.ndarray:
        self.calls.append(len(texts))
        out = np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)
        if progress:
            progress(len(texts), len(texts))
        return out.astype(np.float32)

    @property
    def embedded_texts(self) -> int:
        return sum(self.calls)


class FakeGenerator:
    """Records every request it receives and returns queued replies (or echoes the question)."""

    backend = "fake"

    def __init__(self, replies: Sequence[str] = (), model_id: str = "fake-model"):
        self.replies = list(replies)
        self.model_id = model_id
        self.requests: list[GenerationRequest] = []

    def generate(self, request: GenerationRequest) -> str:
        self.requests.append(request)
        if self.replies:
            return self.replies.pop(0)
        return f"Echo: {request.question}"


class FakeChatServer:
    """An OpenAI-compatible chat server on 127.0.0.1 (a real HTTP server, one thread per request) whose
    reply depends on the request: an XML packet when guided_regex is asked, a JSON array for a json_schema
    response_format, else a sentence citing [1]; each names the question's last words (``answer(body)`` replaces
    that reply). ``latency`` delays
    every reply; ``fail`` is a list of HTTP statuses to answer first (with ``Retry-After: 0``). It records
    requests and the most requests it had in flight at once."""

    def __init__(self, latency: float = 0.0, fail: Sequence[int] = (), model: str = "served-model",
                 answer=None):
        import json
        import threading
        import time
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.latency, self.fail, self.requests, self.in_flight, self.max_in_flight = latency, list(fail), [], 0, 0
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stall

            def log_message(self, *a):
                pass

            def _send(self, status: int, data: dict, headers: dict | None = None) -> None:
                body = json.dumps(data).encode()
                self.send_response(status)
                for k, v in {"Content-Type": "application/json", **(headers or {})}.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                self._send(200, {"data": [{"id": model}]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    outer.requests.append(body)
                    status = outer.fail.pop(0) if outer.fail else 200
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                try:
                    time.sleep(outer.latency)
                    if status != 200:
                        self._send(status, {"error": {"message": f"fake {status}"}}, {"Retry-After": "0"})
                    else:
                        content = (answer or reply)(body)
                        self._send(200, {"choices": [{"message": {"role": "assistant", "content": content}}]})
                finally:
                    with lock:
                        outer.in_flight -= 1

        def reply(body: dict) -> str:
            words = re.findall(r"[A-Za-z]+", body["messages"][-1]["content"].rsplit("Question:", 1)[-1])[-3:]
            topic = " ".join(words) or "the question"
            if "guided_regex" in body or "guided_grammar" in body:
                return (f"<r><t>urgent</t><c>About {topic} [1]</c><cf>medium</cf><sg>Assess {topic} [1]|Refer [2]"
                        f"</sg><ns>Review in 2 days [1]</ns><rf>Danger signs of {topic} [1]</rf></r>")
            if "response_format" in body:
                return json.dumps(["urgent", f"About {topic} [1]", "medium", [f"Assess {topic} [1]"],
                                   ["Review [1]"], ["Danger signs [1]"]])
            return f"The passages describe {topic} [1]."

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class FakeSource:
    """A tiny index for the answer pipeline: ranks chunks by shared words with the question (input-dependent),
    with the book of those chunks and their vocabulary. Dense scores are the share of question words found."""

    def __init__(self, chunks, version_id: str = "v-test", top_dense: float | None = None):
        from ragcds.book import Book

        self.chunks = list(chunks)
        self.version_id = version_id
        self.book = Book(self.chunks)
        self.vocabulary = {t for c in self.chunks for t in _tokens(c.index_text)}
        self.lexicon = None
        self.top_dense = top_dense
        self.calls: list[str] = []

    def retrieve(self, question, k=10, mode="hybrid"):
        from ragcds.retrieve import Hit, Retrieval, rank_sections

        self.calls.append(question)
        q = set(_tokens(question))
        scored = sorted(((len(q & set(_tokens(c.index_text))), -i, c) for i, c in enumerate(self.chunks)),
                        key=lambda t: (-t[0], -t[1]))
        hits = tuple(Hit(r, c, float(s) / max(1, len(q)), dense=float(s) / max(1, len(q)))
                     for r, (s, _, c) in enumerate(scored[:k], 1) if s > 0)
        top = self.top_dense if self.top_dense is not None else (hits[0].dense if hits else 0.0)
        return Retrieval(question, mode, hits, self.version_id, top_dense=top, top_bm25=float(len(q)),
                         sections=rank_sections(hits))

    def retrieve_many(self, questions, k=10, mode="hybrid"):
        return [self.retrieve(q, k, mode) for q in questions]

    def search(self, question, k=5, mode="hybrid"):
        return list(self.retrieve(question, k, mode).hits[:k])


def _tokens(text: str) -> list[str]:
    from ragcds.index.lexical import tokenize

    return tokenize(text)
