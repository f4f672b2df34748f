"""Bootstrap confidence intervals (percentile method, fixed seed) for per-item metrics.

Per-item values are numbers in [0, 1] or counts; ``None`` means "not applicable" and is dropped before
resampling. Results are plain dicts so they can be written to results.json unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

N_RESAMPLES = 2000
SEED = 20231
ALPHA = 0.05


def _clean(values: Sequence[float | None]) -> np.ndarray:
    return np.asarray([float(v) for v in values if v is not None], dtype=float)


def _r(x: float) -> float:
    return round(float(x), 4)


def bootstrap_ci(
    values: Sequence[float | None], n_resamples: int = N_RESAMPLES, seed: int = SEED, alpha: float = ALPHA
) -> dict:
    """Mean and 95% percentile-bootstrap interval: {"mean", "lo", "hi", "n"} (mean None when n == 0)."""
    x = _clean(values)
    n = int(x.size)
    if n == 0:
        return {"mean": None, "lo": None, "hi": None, "n": 0}
    mean = float(x.mean())
    if n == 1:
        return {"mean": _r(mean), "lo": _r(mean), "hi": _r(mean), "n": 1}
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_resamples, n))
    means = x[idx].mean(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return {"mean": _r(mean), "lo": _r(lo), "hi": _r(hi), "n": n}


def paired_bootstrap(
    a: Sequence[float | None],
    b: Sequence[float | None],
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
    alpha: float = ALPHA,
) -> dict:
    """Delta mean(b) - mean(a) over pairs where both are defined, resampling pairs together.

    Returns {"delta", "lo", "hi", "n", "significant"}; significant when the interval excludes 0.
    """
    if len(a) != len(b):
        raise ValueError(f"paired samples differ in length ({len(a)} vs {len(b)})")
    pairs = [(float(x), float(y)) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
    n = len(pairs)
    if n == 0:
        return {"delta": None, "lo": None, "hi": None, "n": 0, "significant": False}
    d = np.asarray([y - x for x, y in pairs])
    delta = float(d.mean())
    if n == 1:
        return {"delta": _r(delta), "lo": _r(delta), "hi": _r(delta), "n": 1, "significant": False}
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, n, size=(n_resamples, n))].mean(axis=1)
    lo, hi = (float(v) for v in np.quantile(means, [alpha / 2, 1 - alpha / 2]))
    significant = bool((lo > 0 or hi < 0) and np.any(d != 0))
    return {"delta": _r(delta), "lo": _r(lo), "hi": _r(hi), "n": n, "significant": significant}


def fmt_ci(stat: dict) -> str:
    """`0.62 [0.50, 0.73] (n=40)`; '–' when undefined."""
    if stat.get("mean") is None:
        return "–"
    return f"{stat['mean']:.2f} [{stat['lo']:.2f}, {stat['hi']:.2f}] (n={stat['n']})"
