"""Paired comparisons: two runs on shared item ids (``ragcds eval compare``), or two modes of one run
(the uplift table of the report). Deltas are B − A with a paired-bootstrap 95% interval; a delta is flagged
significant when the interval excludes 0."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ragcds.errors import RagcdsError
from ragcds.evaluate.metrics import ANSWER_METRICS, RETRIEVAL_METRICS
from ragcds.evaluate.runfiles import read_items
from ragcds.evaluate.stats import paired_bootstrap

UPLIFT_PAIRS: tuple[tuple[str, str], ...] = (
    ("closed-book", "rag"),
    ("closed-book", "extractive"),
    ("extractive", "rag"),
)


def _value(item: dict, key: str, retrieval: bool) -> float | None:
    if item.get("error"):
        return None
    src = item["retrieval"] if retrieval else item.get("metrics", {})
    return src.get(key)


def paired_deltas(a: Sequence[dict], b: Sequence[dict], retrieval: bool = False) -> dict[str, dict]:
    """Per metric: paired bootstrap of b − a over ids present in both item lists."""
    ia, ib = {it["id"]: it for it in a}, {it["id"]: it for it in b}
    ids = sorted(set(ia) & set(ib))
    metrics = RETRIEVAL_METRICS if retrieval else ANSWER_METRICS
    out = {}
    for key, _, higher in metrics:
        d = paired_bootstrap(
            [_value(ia[i], key, retrieval) for i in ids], [_value(ib[i], key, retrieval) for i in ids]
        )
        if d["n"]:
            out[key] = d | {"higher_is_better": higher}
    return out


def mode_deltas(items: Sequence[dict], modes: Sequence[str]) -> dict[str, dict]:
    """Uplift within one run: {"closed-book->rag": {metric: delta}, ...} for the mode pairs present."""
    out = {}
    for base, other in UPLIFT_PAIRS:
        if base in modes and other in modes:
            out[f"{base}->{other}"] = paired_deltas(
                [i for i in items if i["mode"] == base], [i for i in items if i["mode"] == other]
            )
    return out


def compare_runs(run_a: Path, run_b: Path) -> dict[str, dict[str, dict]]:
    """{section: {metric: delta}}; sections are 'retrieval' and each mode both runs share."""
    a, b = read_items(Path(run_a) / "items.jsonl"), read_items(Path(run_b) / "items.jsonl")
    for run, items in ((run_a, a), (run_b, b)):
        if not items:
            raise RagcdsError(f"{run} has no items.jsonl records; run `ragcds eval run --out {run}` first")
    shared = sorted({i["mode"] for i in a} & {i["mode"] for i in b})
    if not shared:
        raise RagcdsError(f"{run_a} and {run_b} share no mode; nothing to compare")
    out = {
        "retrieval": paired_deltas(
            [i for i in a if i["mode"] == shared[0]], [i for i in b if i["mode"] == shared[0]], retrieval=True
        )
    }
    for m in shared:
        out[m] = paired_deltas([i for i in a if i["mode"] == m], [i for i in b if i["mode"] == m])
    return out


def verdict(d: dict) -> str:
    """'better' / 'worse' for significant deltas (taking the metric's direction into account), else ''."""
    if not d.get("significant"):
        return ""
    up = d["delta"] > 0
    return "better" if up == d["higher_is_better"] else "worse"
