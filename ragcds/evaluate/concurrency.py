"""Concurrent evaluation against a server: N items in flight, results handed back in input order.

`ordered_map(fn, items, workers)` runs ``fn`` over ``items`` on up to ``workers`` threads and yields
``(item, result)`` in input order, so the caller writes items.jsonl exactly as a sequential run would.
`Overlap` decides what may actually run at the same time: everything an item does (retrieval, the scope
policy, prompt building, parsing, scoring) runs under one lock, one item at a time as in a sequential run;
only the calls that wait on a server — ``generate()`` of a generator marked ``concurrent = True`` (the
OpenAI-compatible backend) and a judge's ``score()`` — release it. A local model (transformers, llama.cpp,
extractive) keeps the lock while it generates, so local backends stay sequential whatever ``workers`` is.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")
MAX_WORKERS = 64


def ordered_map(
    fn: Callable[[T], R], items: Iterable[T], workers: int = 1, window: int | None = None
) -> Iterator[tuple[T, R]]:
    """Yield ``(item, fn(item))`` in input order with up to ``workers`` calls running at once.

    ``items`` is consumed lazily in the caller's thread, at most ``window`` (default 4 × workers) ahead of
    the result being waited for. With workers == 1, fn runs inline (no threads). If a call raises, no new
    call starts, the calls already started finish and their results are still yielded (in order, the failed
    ones skipped: a computed answer is never dropped), then the first error in input order is raised.
    If the caller stops early (an exception in its loop, Ctrl-C), calls not yet started are cancelled.
    """
    if workers <= 1:
        for item in items:
            yield item, fn(item)
        return
    window = max(workers, window or 4 * workers)
    pending: deque[tuple[T, Future]] = deque()
    source = iter(items)
    first_error: BaseException | None = None
    pool = ThreadPoolExecutor(max_workers=min(workers, MAX_WORKERS), thread_name_prefix="ragcds-eval")
    try:
        while True:
            while first_error is None and len(pending) < window:
                item = next(source, _END)
                if item is _END:
                    break
                pending.append((item, pool.submit(fn, item)))  # type: ignore[arg-type]
            if not pending:
                break
            item, future = pending.popleft()
            try:
                result = future.result()
            except Exception as exc:  # noqa: BLE001 - re-raised below, after the finished calls are handed back
                first_error = first_error or exc
                continue
            yield item, result
        if first_error is not None:
            raise first_error
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


_END: Any = object()


class Overlap:
    """The evaluator's one lock, and proxies whose server-bound methods run with it released.

    Hold it around a whole item (``with overlap:``); pass the item ``overlap.generator(g)`` and
    ``overlap.judge(j)`` instead of ``g`` and ``j``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __enter__(self) -> Overlap:
        self._lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    def generator(self, generator: Any) -> Any:
        """A server-backed generator whose generate() overlaps; a local one unchanged (keeps the lock)."""
        return _Released(generator, "generate", self._lock) if can_overlap(generator) else generator

    def judge(self, judge: Any) -> Any:
        return None if judge is None else _Released(judge, "score", self._lock)


def can_overlap(generator: Any) -> bool:
    """Whether calls to this generator may run at the same time (a server, not a model in this process)."""
    return bool(getattr(generator, "concurrent", False))


class _Released:
    """Forwards everything to ``target``; ``method`` runs with ``lock`` released (the caller holds it)."""

    def __init__(self, target: Any, method: str, lock: threading.Lock):
        self._target, self._method, self._lock = target, method, lock

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if name != self._method:
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            self._lock.release()
            try:
                return value(*args, **kwargs)
            finally:
                self._lock.acquire()

        return call
