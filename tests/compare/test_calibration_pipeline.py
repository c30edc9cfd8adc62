"""Issue 15's measurement, end to end: fabricated run folders, a seed effect, no method effect.

Slow (``make test-slow``): every study writes 8 run folders and goes through ``compare_runs``.
The fast tests check the same statistics vectorized (test_stats.py) and that
``compare_runs`` computes exactly those statistics (test_compare.py).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lensrl.compare.cells import Settings, compare_runs

pytestmark = pytest.mark.slow


def study(
    make_run: Any, tag: str, rng: np.random.Generator, seeds: tuple[tuple[int, ...], ...]
) -> list[Path]:
    """Half of each run's logit seed effect is shared with the other arm's run of that seed."""
    base = rng.normal(-1.0, 1.5, size=100)
    common = {s: rng.normal(0, 0.35 * math.sqrt(0.5)) for s in {*seeds[0], *seeds[1]}}
    runs = []
    for est, arm in zip(("grpo", "lens"), seeds):
        for s in arm:
            u = common[s] + rng.normal(0, 0.35 * math.sqrt(0.5))
            c = rng.binomial(16, 1 / (1 + np.exp(-(base + u))))
            runs.append(make_run(f"{tag}-{est}-{s}", estimator=est, seed=s, c=c))
    return runs


@pytest.mark.parametrize(
    "seeds", [((0, 1, 2, 3), (0, 1, 2, 3)), ((0, 1, 2, 3), (10, 11, 12, 13))]
)
def test_no_method_effect_is_calibrated(
    make_run: Any, seeds: tuple[tuple[int, ...], tuple[int, ...]]
) -> None:
    rng = np.random.default_rng(2026)
    studies = 60
    ps, covered = [], []
    for i in range(studies):
        runs = study(make_run, str(i), rng, seeds)
        result = compare_runs(runs, ks=[8], settings=Settings(resamples=200, permutations=2000, seed=i))
        row = next(r for r in result["comparisons"][0]["rows"] if r["bucket"] == "all")
        ps.append(row["p"])
        covered.append(row["ci"][0] <= 0 <= row["ci"][1])
    bound = 0.05 + 3 * math.sqrt(0.05 * 0.95 / studies)
    assert np.mean(np.array(ps) < 0.05) <= bound
    assert np.mean(covered) >= 0.85
