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
