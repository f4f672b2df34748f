"""Dense index: FAISS inner product over L2-normalised vectors (cosine similarity), exact search."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class DenseIndex:
    def __init__(self, index):
        self.index = index

    @classmethod
    def build(cls, vectors: np.ndarray) -> DenseIndex:
        import faiss

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(vectors)
        return cls(index)

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and row ids for each query row, best first; ids of -1 are dropped by callers."""
        q = np.ascontiguousarray(np.atleast_2d(query), dtype=np.float32)
        k = min(k, self.size)
        if k <= 0:
            return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
        return self.index.search(q, k)

    def vectors(self) -> np.ndarray:
        return self.index.reconstruct_n(0, self.size)

    def save(self, path: Path) -> None:
        import faiss

        faiss.write_index(self.index, str(path))

    @classmethod
    def from_bytes(cls, data: bytes) -> DenseIndex:
        """An index from the bytes of a saved FAISS file (read once by the caller, e.g. to hash them)."""
        import faiss

        return cls(faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8)))

    @classmethod
    def load(cls, path: Path) -> DenseIndex:
        import faiss

        return cls(faiss.read_index(str(path)))
