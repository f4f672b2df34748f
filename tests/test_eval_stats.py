"""Bootstrap intervals: deterministic, sensible widths, paired deltas."""

from __future__ import annotations

import numpy as np

from ragcds.evaluate.stats import bootstrap_ci, fmt_ci, paired_bootstrap


def test_bootstrap_ci_is_deterministic_and_contains_the_mean():
    vals = [1, 0, 1, 1, 0, 1, None, 1, 0, 1]
    a, b = bootstrap_ci(vals), bootstrap_ci(vals)
    assert a == b
    assert a["n"] == 9 and a["mean"] == round(6 / 9, 4)
    assert 0 <= a["lo"] < a["mean"] < a["hi"] <= 1


def test_bootstrap_ci_width_shrinks_with_n():
    rng = np.random.default_rng(1)
    small = bootstrap_ci(list(rng.integers(0, 2, 20)))
    big = bootstrap_ci(list(rng.integers(0, 2, 2000)))
    assert (big["hi"] - big["lo"]) < (small["hi"] - small["lo"])


def test_bootstrap_edge_cases():
    assert bootstrap_ci([])["mean"] is None and bootstrap_ci([None])["n"] == 0
    assert bootstrap_ci([0.5]) == {"mean": 0.5, "lo": 0.5, "hi": 0.5, "n": 1}
    assert fmt_ci(bootstrap_ci([])) == "–"
    assert fmt_ci({"mean": 0.5, "lo": 0.25, "hi": 0.75, "n": 4}) == "0.50 [0.25, 0.75] (n=4)"


def test_paired_bootstrap_flags_a_consistent_improvement():
    a = [0.0] * 30
    b = [1.0] * 25 + [0.0] * 5
    d = paired_bootstrap(a, b)
    assert d["delta"] == round(25 / 30, 4) and d["significant"] and d["lo"] > 0


def test_paired_bootstrap_no_change_and_missing_pairs():
    d = paired_bootstrap([1, 0, 1, 0], [1, 0, 1, 0])
    assert d["delta"] == 0 and not d["significant"]
    d = paired_bootstrap([1, None, 0], [1, 1, None])
    assert d["n"] == 1
    noisy = paired_bootstrap([1, 0, 1, 0, 1, 0], [0, 1, 0, 1, 1, 0])
    assert not noisy["significant"]
