"""What all requests share: the loaded index (reopened when CURRENT changes) and the generator.

A request takes one `Snapshot` (one retriever object of one index version) and uses only it, so an index swap
(`ragcds index update` / `index activate`) never mixes versions inside a request; the next request sees the
new version. Models are loaded once; in-process models (transformers, llama.cpp) and the embedder are called
by one thread at a time, because neither their tokenizers nor llama.cpp contexts are safe to share.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ragcds import __version__
from ragcds.generate.base import GenerationRequest, Generator
from ragcds.index import store
from ragcds.index.embedders import Embedder
from ragcds.index.manifest import Manifest
from ragcds.retrieve import HybridRetriever, Mode, check_question
from ragcds.serve import library
from ragcds.serve.sections import SectionTable, section_view

log = logging.getLogger("ragcds.serve")

# Backends whose generate() may run in several threads at once (pure Python; an HTTP client).
CONCURRENT_BACKENDS = frozenset({"extractive", "openai"})


class SerialEmbedder:
    """An embedder called by one thread at a time (fast tokenizers raise 'Already borrowed' when shared)."""

    def __init__(self, inner: Embedder):
        self.inner = inner
        self.id = inner.id
        self.dim = inner.dim
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str], progress=None) -> np.ndarray:
        with self._lock:
            return self.inner.embed(texts, progress)


class SerialGenerator:
    """A generator called by one thread at a time; every other attribute is the wrapped generator's."""

    def __init__(self, inner: Generator):
        self.inner = inner
        self.backend = inner.backend
        self.model_id = inner.model_id
        self._lock = threading.Lock()

    def generate(self, request: GenerationRequest) -> str:
        with self._lock:
            return self.inner.generate(request)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def set_torch_threads(threads: int | None, backend: str) -> int | None:
    """Torch's intra-op threads for this server process; None = 1 when no model runs in-process (extractive,
    openai), else unchanged. One short query gains nothing from several threads, and while requests run in
    parallel their spinning threads oversubscribe the cores (single-query embedding measured 146 ms median with
    2 threads vs 14 ms with 1 on a busy 2-core machine). Returns the number in force (None without torch)."""
    if "torch" not in sys.modules:
        return None
    import torch

    if threads is None:
        threads = 1 if backend in CONCURRENT_BACKENDS else torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    return torch.get_num_threads()


def share_generator(generator: Generator) -> Generator:
    """The generator as requests use it: serialised unless its backend is safe to call concurrently."""
    return generator if generator.backend in CONCURRENT_BACKENDS else SerialGenerator(generator)  # type: ignore[return-value]


@dataclass(frozen=True)
class Snapshot:
    """One loaded index version: its retriever and its section table."""

    retriever: HybridRetriever
    sections: SectionTable

    @property
    def version_id(self) -> str:
        return self.retriever.index.version_id

    @property
    def manifest(self) -> Manifest:
        return self.retriever.index.manifest


class IndexHolder:
    """The live index version of an index folder, loaded once and reopened when CURRENT changes."""

    def __init__(self, index_dir: Path):
        self.index_dir = Path(index_dir)
        self._lock = threading.Lock()
        self._embedders: dict[tuple[str, str], Embedder] = {}
        self._skip: str | None = None  # a version that failed to load (not retried until CURRENT changes)
        self.reload_error = ""
        self.swaps = 0
        self._snapshot = self._open(store.resolve_version_dir(self.index_dir))

    def _embedder(self, manifest: Manifest) -> Embedder:
        key = (manifest.embedder.ref, manifest.embedder.id)
        if key not in self._embedders:
            self._embedders = {key: SerialEmbedder(library.load_embedder(key[0]))}  # keep only the one in use
        return self._embedders[key]

    def _open(self, version_dir: Path) -> Snapshot:
        retriever = library.open_retriever(version_dir, self._embedder(store.read_manifest(version_dir)))
        return Snapshot(retriever, SectionTable.build(retriever.chunks, retriever.index.path))

    def snapshot(self) -> Snapshot:
        """The live version for one request. The request that notices a swap loads the new version; requests
        arriving meanwhile keep the previous one (each request keeps the snapshot it got)."""
        snap = self._snapshot
        live = store.current_version(self.index_dir)
        if live == snap.version_id and self._skip:  # CURRENT is back on the loaded version
            self._skip, self.reload_error = None, ""
        if live is None or live in (snap.version_id, self._skip) or not self._lock.acquire(blocking=False):
            return snap
        try:
            live = store.current_version(self.index_dir)
            if live and live not in (self._snapshot.version_id, self._skip):
                self._reload(live)
            return self._snapshot
        finally:
            self._lock.release()

    def _reload(self, live: str) -> None:
        old = self._snapshot.version_id
        try:
            self._snapshot = self._open(store.resolve_version_dir(self.index_dir))
        except Exception as exc:  # noqa: BLE001 - keep serving the version that works, say why
            self._skip = live
            self.reload_error = f"index version {live} could not be loaded ({exc}); still serving {old}"
            log.error("ragcds serve: %s", self.reload_error)
            return
        self._skip, self.reload_error = None, ""
        self.swaps += 1
        log.warning("ragcds serve: index version %s is live (was %s)", self._snapshot.version_id, old)


@dataclass(frozen=True)
class AskParams:
    """The options of `ragcds ask` that a request may set (model and backend are the server's)."""

    question: str
    format: str = "prose"
    k: int = 5
    rag: bool = True
    policy: str = "quote"
    max_new_tokens: int = 256
    temperature: float = 0.0


class Service:
    """The operations behind the HTTP routes, callable in-process (the benchmark's baseline)."""

    def __init__(self, holder: IndexHolder, generator: Generator, *, audit: bool = True):
        self.holder = holder
        self.generator = share_generator(generator)
        self.audit = audit
        self.started = time.time()
        self._audit_lock = threading.Lock()
        self.audit_failures = 0

    def search(self, question: str, k: int = 5, mode: Mode = "hybrid") -> list[dict]:
        check_question(question)
        return library.search(self.holder.snapshot().retriever, question, k, mode)

    def ask(self, params: AskParams) -> tuple[dict, int | None]:
        """The `ragcds ask --json` record and its audit-log row id (None when logging is off)."""
        check_question(params.question)
        retriever = self.holder.snapshot().retriever if params.rag else None
        answer = library.ask(
            params.question, generator=self.generator, retriever=retriever, format=params.format, k=params.k,
            rag=params.rag, policy=params.policy, max_new_tokens=params.max_new_tokens,
            temperature=params.temperature,
        )
        record = library.answer_json(answer)
        return record, self._log(answer)

    def _log(self, answer) -> int | None:
        if not self.audit:
            return None
        try:
            with self._audit_lock:  # one SQLite writer at a time in this process
                return library.log_answer(answer)
        except Exception as exc:  # noqa: BLE001 - the computed answer is still returned
            self.audit_failures += 1
            log.error("ragcds serve: the answer was not written to the audit log (%s: %s)", type(exc).__name__, exc)
            return None

    def section(self, number: str) -> dict:
        snap = self.holder.snapshot()
        return section_view(number, snap.retriever.chunks, snap.sections, snap.version_id)

    def health(self) -> dict:
        snap = self.holder.snapshot()
        m = snap.manifest
        return {
            "status": "ok" if not self.holder.reload_error else "degraded",
            "ragcds_version": __version__,
            "index": {
                "path": str(self.holder.index_dir),
                "version": snap.version_id,
                "built_at": m.built_at,
                "source": m.source.file,
                "chunks": len(snap.retriever.chunks),
                "sections": len(snap.sections.rows),
                "swaps": self.holder.swaps,
                "reload_error": self.holder.reload_error,
            },
            "model": {"backend": self.generator.backend, "model": self.generator.model_id},
            "audit": {"enabled": self.audit, "failures": self.audit_failures},
            "uptime_s": round(time.time() - self.started, 1),
        }
