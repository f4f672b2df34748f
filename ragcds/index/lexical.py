"""Lexical index: BM25 (bm25s) over a clinical tokenizer that keeps numbers and doses.

bm25s' own tokenizer drops one-character tokens and splits "2.4" apart; here numbers stay whole
("2.4", "500"), words are lower-cased and stemmed (Snowball English), and a short stopword list is
removed. Files are bm25s' own: .npy arrays (loaded without pickle) and JSON vocabulary and params.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

TOKENIZER_ID = "ragcds-bm25-tok-v1"
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+", re.UNICODE)
STOPWORDS = frozenset(
    "a an and are as at be by for from has have how i in is it its of on or should that the their them "
    "they this to was what when where which who will with would do does can my me we you your".split()
)


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def tokenize(text: str) -> list[str]:
    words = [t for t in _TOKEN.findall(text.lower()) if t not in STOPWORDS]
    stem = _stemmer().stemWord
    return [w if w[0].isdigit() else stem(w) for w in words]


class LexicalIndex:
    def __init__(self, model):
        self.model = model

    @classmethod
    def build(cls, texts: Sequence[str]) -> LexicalIndex:
        import bm25s

        model = bm25s.BM25(method="lucene")
        model.index([tokenize(t) or ["\x00empty"] for t in texts], show_progress=False)
        return cls(model)

    def scores(self, query: str) -> np.ndarray:
        vocab = self.model.vocab_dict
        tokens = [t for t in tokenize(query) if t in vocab]
        if not tokens:
            return np.zeros(self.num_docs, dtype=np.float32)
        return np.asarray(self.model.get_scores(tokens), dtype=np.float32)

    @property
    def num_docs(self) -> int:
        return int(self.model.scores["num_docs"])

    def postings(self, query: str) -> list[np.ndarray]:
        """The rows of the chunks holding each distinct known word of ``query`` (numbers left out: a pulse or a
        temperature names no condition), one array per word."""
        vocab, ptr, rows = self.model.vocab_dict, self.model.scores["indptr"], self.model.scores["indices"]
        ids = [vocab[t] for t in dict.fromkeys(tokenize(query)) if t in vocab and not t[0].isdigit()]
        return [rows[ptr[i]:ptr[i + 1]] for i in ids]

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        s = self.scores(query)
        k = min(k, len(s))
        top = np.argpartition(-s, k - 1)[:k] if k else np.array([], dtype=np.int64)
        top = top[np.argsort(-s[top], kind="stable")]
        top = top[s[top] > 0]
        return s[top], top

    def save(self, path: Path) -> None:
        self.model.save(str(path))
        (Path(path) / "tokenizer.json").write_text(json.dumps({"id": TOKENIZER_ID}))

    @classmethod
    def load(cls, path: Path) -> LexicalIndex:
        import bm25s

        return cls(bm25s.BM25.load(str(path), mmap=False, load_corpus=False))
