"""The study's own statistics: Holm, TOST, t-intervals, MDE and seeds needed."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from lensrl.study.summary import holm, mde, paired_t_power, seeds_needed, t_interval, tost


def test_holm_by_hand():
    # sorted p: 0.01 (x3 = 0.03), 0.02 (x2 = 0.04), 0.04 (x1 = 0.04, monotone max)
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1


def test_t_interval_matches_scipy():
    x = [0.1, 0.3, 0.2, 0.35]
    lo, hi = t_interval(x, 0.95)
    ref = stats.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
    assert (lo, hi) == pytest.approx(ref)
    assert t_interval([0.2], 0.95) is None


def test_tost_equivalence_and_not():
    rng = np.random.default_rng(0)
    tight = rng.normal(0.0, 0.002, size=12)
    assert tost(tight, 0.02)["equivalent"] is True
    shifted = rng.normal(0.03, 0.002, size=12)  # outside the margin
    assert tost(shifted, 0.02)["equivalent"] is False
    assert tost([0.01], 0.02)["p"] is None


def test_mde_has_the_stated_power_and_seeds_needed_agree():
    sd, n = 0.035, 12
    d = mde(sd, n, 0.8)
    assert paired_t_power(d, sd, n) == pytest.approx(0.8, abs=1e-6)
    # normal approximation as a sanity bound: (z.975 + z.8) sd / sqrt(n) is a bit smaller
    assert d > (1.96 + 0.8416) * sd / math.sqrt(n)
    assert seeds_needed(sd, d * 1.001, 0.8) == n
    assert seeds_needed(sd, 0.02, 0.8) > seeds_needed(sd, 0.04, 0.8)
