"""OpenAI-compatible chat server backend (vLLM, llama-server, Ollama, ...) over httpx.

Guided decoding is requested for the constrained formats — array: `response_format` json_schema; xml:
vLLM's `guided_regex` (or `guided_grammar` with guided="grammar") — and the reply is still validated by
the answer pipeline, which repairs it or records a parse failure.

Timeouts are separate: connecting gives up after ``CONNECT_TIMEOUT`` seconds (a server that is not there),
waiting for the reply after ``timeout`` seconds (``--timeout`` / ``RAGCDS_TIMEOUT``, default
``DEFAULT_TIMEOUT``: a server that accepted the request and never answers).

A busy server's 429 and 5xx answers are retried with exponential backoff (honouring Retry-After). Calls
may overlap (`concurrent = True`): the evaluator keeps N requests in flight with `--concurrency N`.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

import httpx

from ragcds.errors import BackendUnavailable
from ragcds.generate.base import GenerationRequest
from ragcds.generate.formats import grammar, json_schema, xml_regex

DEFAULT_TIMEOUT = 120.0  # seconds to wait for a reply: a CPU server writing 256 tokens with a 7B model fits
CONNECT_TIMEOUT = 10.0  # seconds to open the connection


class _HTTPError(BackendUnavailable):
    """The server answered with an HTTP error status."""

MAX_BACKOFF_S = 30.0  # longest single wait, whatever Retry-After says


def retryable(status: int) -> bool:
    """Rate limited or a server-side failure: worth trying again after a pause."""
    return status == 429 or status >= 500


def backoff_delay(response: httpx.Response, attempt: int, base: float) -> float:
    """Seconds to wait before retry `attempt` (0-based): Retry-After when the server gives it in seconds,
    else base * 2**attempt with up to 50% jitter; never more than MAX_BACKOFF_S."""
    try:
        wait = float(response.headers.get("Retry-After", ""))
    except ValueError:
        wait = base * 2**attempt * (1 + random.random() / 2)
    return min(max(wait, 0.0), MAX_BACKOFF_S)


def base_url(ref: str) -> str:
    url = ref.rstrip("/")
    for suffix in ("/chat/completions", "/completions"):
        if url.endswith(suffix):
            url = url[: -len(suffix)]
    return url


def guided_options(format: str, guided: str = "regex") -> dict[str, Any]:
    """Extra request body fields that ask the server to constrain the reply."""
    if format == "array":
        return {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "triage_array", "schema": json_schema(), "strict": True},
            }
        }
    if format == "xml":
        return {"guided_grammar": grammar("xml")} if guided == "grammar" else {"guided_regex": xml_regex()}
    return {}


class OpenAIGenerator:
    backend = "openai"
    supports_system = True
    concurrent = True  # generate() calls may overlap (httpx.Client is thread-safe)

    def __init__(
        self,
        ref: str,
        model_name: str | None = None,
        api_key: str | None = None,
        timeout: float | None = None,
        guided: str = "regex",
        client: httpx.Client | None = None,
        retries: int = 3,
        backoff: float = 1.0,
        **_: Any,
    ):
        self.base = base_url(ref)
        self.api_key = api_key or os.environ.get("RAGCDS_OPENAI_API_KEY") or os.environ.get("OPENAI_API_KEY")
        self.read_timeout = float(timeout or DEFAULT_TIMEOUT)
        self.timeout = httpx.Timeout(self.read_timeout, connect=min(CONNECT_TIMEOUT, self.read_timeout))
        self.guided = guided
        self.retries, self.backoff = max(0, retries), backoff
        self.client = client or httpx.Client(timeout=self.timeout)
        self._model_name = model_name or os.environ.get("RAGCDS_OPENAI_MODEL")

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = f"{self.base}{path}"
        try:
            resp = self._send(method, url, **kwargs)
        except httpx.ConnectTimeout as exc:
            raise BackendUnavailable(
                f"cannot reach {url}: no connection within {self.timeout.connect:g} s — is the server running "
                "and reachable? Check the --model URL"
            ) from exc
        except httpx.ConnectError as exc:
            raise BackendUnavailable(
                f"cannot reach {url} — is the server running? Start it (e.g. `vllm serve MODEL` or "
                "`llama-server -m model.gguf --port 8080`) or pass the right --model URL"
            ) from exc
        except httpx.TimeoutException as exc:
            raise BackendUnavailable(
                f"{url} accepted the request but sent no reply within {self.read_timeout:g} s — wait longer: "
                f"--timeout {max(2 * self.read_timeout, 60):.0f} (or RAGCDS_TIMEOUT), or use a smaller model"
            ) from exc
        except httpx.HTTPError as exc:
            raise BackendUnavailable(f"{url} failed: {exc} — check the --model URL and the server's log") from exc
        if resp.status_code >= 400 and retryable(resp.status_code):
            raise _HTTPError(
                f"{url} answered HTTP {resp.status_code} {self.retries + 1} times: {resp.text[:200]!r} — "
                "the server is overloaded or failing; retry later or lower --concurrency"
            )
        if resp.status_code >= 400:
            raise _HTTPError(
                f"{url} answered HTTP {resp.status_code}: {resp.text[:200]!r} — check "
                "--model-name / RAGCDS_OPENAI_MODEL and RAGCDS_OPENAI_API_KEY"
            )
        return resp

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request, repeated up to `retries` times while the server answers 429 or 5xx."""
        for attempt in range(self.retries + 1):
            resp = self.client.request(method, url, headers=self._headers(), **kwargs)
            if not retryable(resp.status_code) or attempt == self.retries:
                return resp
            time.sleep(backoff_delay(resp, attempt, self.backoff))
        raise AssertionError("unreachable")  # pragma: no cover

    def model_name(self) -> str:
        """The configured name, else the first model the server lists."""
        if not self._model_name:
            try:
                data = self._request("GET", "/models").json().get("data") or []
                self._model_name = data[0]["id"] if data else "default"
            except (_HTTPError, ValueError, KeyError, TypeError):  # no /models listing: let the server choose
                self._model_name = "default"
        return self._model_name

    @property
    def model_id(self) -> str:
        """The served model's name (resolved once), so every answer record names the same model."""
        return self.model_name()

    def generate(self, request: GenerationRequest) -> str:
        body: dict[str, Any] = {
            "model": self.model_name(),
            "messages": request.messages,
            "max_tokens": request.max_new_tokens,
            "temperature": request.temperature,
            **guided_options(request.format, self.guided),
        }
        data = self._request("POST", "/chat/completions", json=body).json()
        try:
            return str(data["choices"][0]["message"]["content"] or "").strip()
        except (KeyError, IndexError, TypeError) as exc:
            raise BackendUnavailable(
                f"{self.base} returned no choices — is it an OpenAI-compatible server?"
            ) from exc
