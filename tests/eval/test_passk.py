"""pass@k against brute-force enumeration, at the edges, and buckets / bootstrap CIs."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lensrl.compare.stats import rng_for
from lensrl.eval import bootstrap_mean_ci, bucket_masks, pass_at_k, summarize


def brute_force(n: int, c: int, k: int) -> float:
    """Share of all k-subsets of the n samples that hold at least one correct sample."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(samples, k))
    return sum(any(s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", range(1, 9))
def test_matches_enumeration_of_all_k_subsets(n: int) -> None:
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute_force(n, c, k), abs=1e-12)


@pytest.mark.parametrize(
    ("n", "c", "k", "expected", "why"),
    [
        (16, 0, 1, 0.0, "nothing correct"),
        (16, 0, 16, 0.0, "nothing correct, k = n"),
        (16, 16, 1, 1.0, "everything correct"),
        (16, 1, 16, 1.0, "k = n: the one correct sample is always drawn"),
        (16, 13, 4, 1.0, "n - c = 3 < k = 4: every 4-subset holds a correct one"),
        (16, 12, 4, 1 - 1 / 1820, "n - c = k: exactly one all-wrong subset of C(16,4) = 1820"),
        (16, 4, 1, 0.25, "pass@1 = c / n"),
        (4, 2, 2, 1 - 1 / 6, "C(2,2)/C(4,2) = 1/6"),
        (1, 1, 1, 1.0, "one greedy sample, right"),
        (1, 0, 1, 0.0, "one greedy sample, wrong"),
    ],
)
def test_edges(n: int, c: int, k: int, expected: float, why: str) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12), why


@pytest.mark.parametrize(("n", "c", "k"), [(4, 2, 5), (4, 2, 0), (4, 5, 1), (4, -1, 1)])
def test_rejects_impossible_arguments(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


@given(st.integers(1, 64).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))))
def test_closed_form_and_monotone(nc: tuple[int, int]) -> None:
    n, c = nc
    values = [pass_at_k(n, c, k) for k in range(1, n + 1)]
    for k, v in enumerate(values, start=1):
        assert v == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k), abs=1e-9)
    assert values[0] == pytest.approx(c / n)
    assert all(0.0 <= v <= 1.0 for v in values)
    assert all(a <= b + 1e-12 for a, b in itertools.pairwise(values))


def test_buckets_math_levels() -> None:
    masks = bucket_masks([1, 2, 3, 4, 5, 5, None])
    assert list(masks) == [
        "all",
        "level_1",
        "level_2",
        "level_3",
        "level_4",
        "level_5",
        "levels_4-5",
    ]
    assert masks["all"].sum() == 7
    assert masks["levels_4-5"].tolist() == [False, False, False, True, True, True, False]


def test_buckets_without_math_levels() -> None:
    assert list(bucket_masks([None, None])) == ["all"]
    assert "levels_4-5" not in bucket_masks([1, 2, 3])
    assert "levels_4-5" not in bucket_masks([4, 9])  # not MATH-style levels


def test_bootstrap_is_seeded_and_sane(rng: np.random.Generator) -> None:
    values = rng.uniform(size=(200, 2))
    a = bootstrap_mean_ci(values, rng=rng_for(3, "all"), resamples=500)
    b = bootstrap_mean_ci(values, rng=rng_for(3, "all"), resamples=500)
    c = bootstrap_mean_ci(values, rng=rng_for(4, "all"), resamples=500)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    lo, hi = a
    mean = values.mean(axis=0)
    assert np.all(lo < mean) and np.all(mean < hi)
    # Width ≈ 2 · 1.96 · sd / √m for a mean of uniforms (sd = 1/√12).
    assert np.allclose(hi - lo, 2 * 1.96 / math.sqrt(12 * 200), rtol=0.25)
    same = bootstrap_mean_ci(np.full((5, 1), 0.5), resamples=50, rng=rng_for(0))
    assert same[0][0] == same[1][0] == 0.5


def test_summarize_counts_and_skips_k_above_n() -> None:
    problems = [{"n": 4, "c": c, "level": lv} for c, lv in [(0, 1), (4, 1), (2, 4), (1, 5)]]
    out = summarize(problems, ks=(1, 2, 4, 8), resamples=100)
    assert set(out["all"]) == {"1", "2", "4"}
    assert out["all"]["1"]["mean"] == pytest.approx((0 + 1 + 0.5 + 0.25) / 4)
    assert out["level_1"]["1"]["problems"] == 2
    assert out["levels_4-5"]["4"] == {"mean": 1.0, "ci": [1.0, 1.0], "problems": 2}
