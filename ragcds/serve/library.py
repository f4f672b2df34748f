"""The one place where the server calls the ragcds library (answer pipeline, retrieval, audit log).

Keep this module thin: it must produce exactly what `ragcds ask --json` and `ragcds search --json` print.
When the pipeline moves (e.g. answer_question to a pipeline module), re-point the imports here only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ragcds.generate.base import Answer, Generator
from ragcds.index.embedders import Embedder
from ragcds.retrieve import HybridRetriever, Mode


def load_generator(ref: str | None, backend: str = "auto", **options: Any) -> Generator:
    """The generator `ragcds ask --model REF --backend NAME` would use."""
    from ragcds.generate.backends import load_generator as load

    return load(ref, backend, **options)


def load_embedder(ref: str) -> Embedder:
    from ragcds.index.embedders import load_embedder as load

    return load(ref)


def open_retriever(version_dir: Path, embedder: Embedder) -> HybridRetriever:
    """One index version (a version folder) searched with an already loaded embedder."""
    return HybridRetriever.open(version_dir, embedder=embedder)


def ask(
    question: str,
    *,
    generator: Generator,
    retriever: HybridRetriever | None,
    format: str,
    k: int,
    rag: bool,
    policy: str,
    max_new_tokens: int,
    temperature: float,
) -> Answer:
    """The answer `ragcds ask` gives (the call the CLI makes, with the same options)."""
    from ragcds.generate.answer import answer_question

    return answer_question(
        question,
        generator=generator,
        retriever=retriever,
        format=format,  # type: ignore[arg-type]
        k=k,
        rag=rag,
        policy=policy,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
    )


def answer_json(answer: Answer) -> dict:
    """Exactly the record `ragcds ask --json` prints."""
    from ragcds.generate.answer import answer_to_json

    return answer_to_json(answer)


def search(retriever: HybridRetriever, question: str, k: int, mode: Mode) -> list[dict]:
    """Exactly the array `ragcds search --json` prints."""
    return [h.to_json() for h in retriever.search(question, k=k, mode=mode)]


def log_answer(answer: Answer) -> int | None:
    """Append the answer to the audit log as `ragcds ask` does (None when RAGCDS_LOG=0)."""
    from ragcds import audit

    return audit.log_answer(answer)
