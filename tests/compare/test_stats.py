"""Seed-level statistics: exact small cases, oracles, and simulation-based calibration.

The calibration tests simulate many studies at once (vectorized): run scores come from binomial
draws per problem with a per-run seed effect on the logit scale, shared in part by the two runs
that share a seed, and no method effect. The primary p must then be calibrated and the t CI
must cover the true difference (0); with a real effect the test must find it.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

import lensrl.compare.stats as ss
from lensrl.eval.passk import pass_at_k


def test_sign_flip_p_by_hand() -> None:
    # d = (1, 2, 3): signed sums are ±6, ±4, ±2, 0, 0; only ±6 reach |6|, so p = 2/8.
    assert ss.sign_flip_p(np.array([1.0, 2.0, 3.0])) == pytest.approx(0.25)
    # All differences zero: every pattern ties with the observed 0.
    assert ss.sign_flip_p(np.zeros(4)) == 1.0


def test_run_permutation_p_by_hand() -> None:
    # Pooled (3, 4 | 1, 2): the 6 splits give Δ = 2, −1, 0, 0, 1, −2; |Δ| ≥ 2 twice → 1/3.
    p = ss.run_permutation_p(np.array([3.0, 4.0]), np.array([1.0, 2.0]))
    assert p == pytest.approx(1 / 3)


def loop_sign_flip(d: np.ndarray) -> float:
    obs = abs(d.mean())
    stats_ = [abs(np.mean(np.array(e) * d)) for e in itertools.product((1, -1), repeat=len(d))]
    return float(np.mean([x >= obs - 1e-12 for x in stats_]))


def loop_run_perm(a: np.ndarray, b: np.ndarray) -> float:
    pooled = np.concatenate([a, b])
    obs = abs(a.mean() - b.mean())
    out = []
    for sub in itertools.combinations(range(len(pooled)), len(a)):
        rest = [i for i in range(len(pooled)) if i not in sub]
        out.append(abs(pooled[list(sub)].mean() - pooled[rest].mean()) >= obs - 1e-12)
    return float(np.mean(out))


def test_vectorized_tests_match_loops(rng: np.random.Generator) -> None:
    d = rng.normal(0.3, 1, size=(20, 5))
    assert ss.sign_flip_p(d) == pytest.approx([loop_sign_flip(x) for x in d])
    a, b = rng.normal(0.5, 1, size=(20, 3)), rng.normal(0, 1, size=(20, 4))
    assert ss.run_permutation_p(a, b) == pytest.approx(
        [loop_run_perm(x, y) for x, y in zip(a, b)]
    )


def test_random_relabellings_agree_with_exact(
    monkeypatch: pytest.MonkeyPatch, rng: np.random.Generator
) -> None:
    d = rng.normal(0.4, 1, size=(6, 8))
    a, b = rng.normal(0.5, 1, size=(6, 4)), rng.normal(0, 1, size=(6, 4))
    exact = ss.sign_flip_p(d), ss.run_permutation_p(a, b)
    monkeypatch.setattr(ss, "MAX_RELABELLINGS", 1)
    gen = np.random.default_rng(0)
    drawn = (
        ss.sign_flip_p(d, permutations=20000, rng=gen),
        ss.run_permutation_p(a, b, permutations=20000, rng=gen),
    )
    assert drawn[0] == pytest.approx(exact[0], abs=0.015)
    assert drawn[1] == pytest.approx(exact[1], abs=0.015)


def test_smallest_p() -> None:
    assert ss.smallest_p(paired=True, s_a=4, s_b=4) == 2 / 16
    assert ss.smallest_p(paired=True, s_a=6, s_b=6) == 2 / 64
    assert ss.smallest_p(paired=False, s_a=4, s_b=4) == 2 / 70
    assert ss.smallest_p(paired=False, s_a=2, s_b=3) == 1 / 10
    # The bound is attained: the most extreme paired data reach it.
    assert ss.sign_flip_p(np.arange(1.0, 5.0)) == 2 / 16


def test_t_pieces_match_scipy(rng: np.random.Generator) -> None:
    a, b = rng.normal(1, 1, size=5), rng.normal(0, 2, size=4)
    est, se, df = ss.welch_se(a, b)
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert ss.t_test_p(est, se, df) == pytest.approx(ref.pvalue)
    assert df == pytest.approx(ref.df)
    d = rng.normal(0.5, 1, size=6)
    est, se, df = ss.paired_se(d)
    assert ss.t_test_p(est, se, df) == pytest.approx(stats.ttest_1samp(d, 0).pvalue)
    lo, hi = ss.t_interval(est, se, df, 0.95)
    ci = stats.ttest_1samp(d, 0).confidence_interval(0.95)
    assert (lo, hi) == pytest.approx((ci.low, ci.high))


def test_power_and_mde() -> None:
    assert ss.t_power(0.0, 1.0, 10, alpha=0.05) == pytest.approx(0.05)
    delta = ss.mde(0.01, 7, alpha=0.05, power=0.8)
    assert ss.t_power(delta, 0.01, 7) == pytest.approx(0.8, abs=1e-6)
    # Large df: the normal-theory (z_{.975} + z_{.8}) · se.
    assert ss.mde(0.01, 10_000) == pytest.approx(0.01 * (1.959964 + 0.841621), rel=1e-3)
    assert ss.mde(0.01, 3) > ss.mde(0.01, 30)  # fewer df, larger MDE
    assert math.isnan(ss.mde(0.01, 0))


def test_tost() -> None:
    # Equivalent exactly when the 90% t interval lies inside (−margin, margin).
    for est, se, df, margin in [(0.001, 0.005, 9, 0.02), (0.01, 0.005, 9, 0.015), (0, 1, 3, 1)]:
        lo, hi = ss.t_interval(est, se, df, 0.90)
        inside = -margin < lo and hi < margin
        assert (ss.tost_p(est, se, df, margin) < 0.05) == inside
    with pytest.raises(ValueError, match="margin"):
        ss.tost_p(0.0, 1.0, 3, 0.0)


def test_holm_and_bh_by_hand() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    # Holm: sorted 0.005·4, 0.01·3, 0.03·2, 0.04·1 = .02, .03, .06, .04 → running max.
    assert ss.holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # BH: p·m/rank = .02, .02, .04, .04 (ranks of .005, .01, .03, .04), then running min.
    assert ss.bh(p) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert ss.holm([]).size == 0 and ss.bh([]).size == 0


def test_jackknife_variance() -> None:
    n, c = np.array([16, 16, 8, 5]), np.array([0, 5, 8, 2])
    var1 = ss.jackknife_var_pass_at_k(n, c, 1)
    p = c / n
    assert var1 == pytest.approx(p * (1 - p) / (n - 1))  # the textbook s²/n
    for k in (2, 4):
        got = ss.jackknife_var_pass_at_k(n, c, k)
        for j, (nj, cj) in enumerate(zip(n, c)):
            if k > nj - 1:
                assert math.isnan(got[j])
                continue
            # Oracle: delete each of the n samples in turn.
            outcomes = [1] * cj + [0] * (nj - cj)
            loo = [pass_at_k(nj - 1, cj - o, k) for o in outcomes]
            assert got[j] == pytest.approx((nj - 1) / nj * np.sum((loo - np.mean(loo)) ** 2))


def test_seeds_needed() -> None:
    # A paired sign-flip test cannot give p < 0.05 with fewer than 6 pairs, however clear.
    assert ss.seeds_needed(0.001, 0.05, paired=True) == 6
    s = ss.seeds_needed(0.02, 0.02, paired=True)
    assert s is not None and s > 6
    assert ss.t_power(0.02, 0.02 / math.sqrt(s), s - 1) >= 0.8
    assert ss.t_power(0.02, 0.02 / math.sqrt(s - 1), s - 2) < 0.8
    assert ss.seeds_needed(0.02, 0.0001, paired=False, max_seeds=50) is None
    with pytest.raises(ValueError, match="delta"):
        ss.seeds_needed(0.02, 0.0, paired=True)


def simulate(
    rng: np.random.Generator,
    *,
    studies: int,
    seeds: tuple[int, int],
    effect: float = 0.0,
    seed_sd: float = 0.25,
    shared: float = 0.5,
    m: int = 60,
    n: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """Run scores (pass@1) ``(studies, s_A)``, ``(studies, s_B)`` of many simulated studies.

    Problem difficulty is shared by all runs of a study; each run gets a seed effect on the
    logit scale, of which a share ``shared`` of the variance belongs to its seed (and so to the
    other arm's run with that seed); the method adds ``effect`` to A's logits.
    """
    s_a, s_b = seeds
    base = rng.normal(-0.3, 1.5, size=(studies, 1, m))
    common = rng.normal(0, seed_sd * math.sqrt(shared), size=(studies, max(s_a, s_b), 1))
    own_sd = seed_sd * math.sqrt(1 - shared)

    def arm(s: int, shift: float) -> np.ndarray:
        u = common[:, :s] + rng.normal(0, own_sd, size=(studies, s, 1))
        prob = 1 / (1 + np.exp(-(base + u + shift)))
        return rng.binomial(n, prob).mean(axis=2) / n  # (studies, s)

    return arm(s_a, effect), arm(s_b, 0.0)


def mc_bound(rate: float, studies: int) -> float:
    return rate + 3 * math.sqrt(rate * (1 - rate) / studies)


@pytest.mark.parametrize("s", [3, 4, 5, 6])
def test_paired_calibration_and_coverage(s: int) -> None:
    studies = 2000
    a, b = simulate(np.random.default_rng(s), studies=studies, seeds=(s, s))
    d = a - b
    p = ss.sign_flip_p(d)
    # Every attainable level up to 0.25 is respected (p is discrete: k/2^(s−1)).
    for level in sorted({2 * j / 2**s for j in range(1, 2**s)}):
        if level <= 0.25:
            assert np.mean(p <= level + 1e-12) <= mc_bound(level, studies), level
    assert np.mean(p < 0.05) <= mc_bound(0.05, studies)
    est, se, df = ss.paired_se(d)
    lo, hi = ss.t_interval(est, se, df, 0.95)
    assert np.mean((lo <= 0) & (hi >= 0)) >= 0.90


@pytest.mark.parametrize("seeds", [(3, 3), (4, 4), (5, 5), (4, 3)])
def test_unpaired_calibration_and_coverage(seeds: tuple[int, int]) -> None:
    studies = 2000
    a, b = simulate(np.random.default_rng(sum(seeds)), studies=studies, seeds=seeds, shared=0.0)
    p = ss.run_permutation_p(a, b)
    assert np.mean(p < 0.05) <= mc_bound(0.05, studies)
    assert np.mean(p <= 0.1 + 1e-12) <= mc_bound(0.1, studies)
    est, se, df = ss.welch_se(a, b)
    lo, hi = ss.t_interval(est, se, df, 0.95)
    assert np.mean((lo <= 0) & (hi >= 0)) >= 0.90


def test_per_problem_relabelling_is_not_calibrated_for_methods() -> None:
    """Why the seed level is primary: the per-problem null ignores the seed effect."""
    rng = np.random.default_rng(7)
    a, b = simulate(rng, studies=400, seeds=(4, 4), seed_sd=0.4)
    # A naive z test treating the 4·m problem-level values as independent, as per-problem
    # relabelling effectively does: its rejection rate far exceeds 5%.
    se_naive = np.sqrt(a.var(axis=1, ddof=1) / 4 + b.var(axis=1, ddof=1) / 4) / math.sqrt(60)
    naive = np.abs(a.mean(1) - b.mean(1)) / se_naive > 1.96
    assert naive.mean() > 0.3
    assert np.mean(ss.run_permutation_p(a, b) < 0.05) <= mc_bound(0.05, 400)


@pytest.mark.parametrize(("seeds", "paired"), [((8, 8), True), ((5, 5), False)])
def test_detects_a_real_effect(seeds: tuple[int, int], paired: bool) -> None:
    # +0.8 on the logit scale is about +12 points of pass@1 here, against a seed sd of ~4.
    a, b = simulate(np.random.default_rng(3), studies=500, seeds=seeds, effect=0.8)
    p = ss.sign_flip_p(a - b) if paired else ss.run_permutation_p(a, b)
    assert np.mean(p < 0.05) >= 0.9
    est, se, df = ss.paired_se(a - b) if paired else ss.welch_se(a, b)
    lo, _ = ss.t_interval(est, se, df, 0.95)
    assert np.mean(lo > 0) >= 0.9


def test_power_formula_predicts_the_sign_flip_test() -> None:
    """The planner's noncentral-t power matches the simulated rejection rate of the exact test."""
    rng = np.random.default_rng(11)
    s = 10
    a, b = simulate(rng, studies=3000, seeds=(s, s), effect=0.25)
    d = a - b
    true_mean, true_sd = float(d.mean()), float(d.std())  # over 30,000 simulated pairs
    predicted = ss.t_power(true_mean, true_sd / math.sqrt(s), s - 1)
    observed = float(np.mean(ss.sign_flip_p(d) < 0.05))
    assert 0.2 < predicted < 0.95  # an informative regime, not a saturated one
    assert observed == pytest.approx(predicted, abs=0.06)


def test_per_method_ci_with_seeds_covers() -> None:
    """method_summary's crossed CI (formula pinned in test_compare.py) covers the true pass@1.

    The truth is E[pass@1] over problems and seeds; a problems-only interval ignores seeds and
    under-covers (about 0.7-0.8 here), the crossed one must not.
    """
    rng = np.random.default_rng(0)
    draws = rng.normal(-0.5, 1.5, 1_000_000) + rng.normal(0, 0.35, 1_000_000)
    truth = float(np.mean(1 / (1 + np.exp(-draws))))
    for s in (2, 3, 5):
        studies, m = 1500, 100
        base = rng.normal(-0.5, 1.5, size=(studies, 1, m))
        u = rng.normal(0, 0.35, size=(studies, s, 1))
        x = rng.binomial(16, 1 / (1 + np.exp(-(base + u)))) / 16  # (studies, s, m)
        y = x.mean(axis=2)
        v_seed = y.var(axis=1, ddof=1) / s
        v_prob = x.mean(axis=1).var(axis=1, ddof=1) / m
        df = (v_seed + v_prob) ** 2 / (v_seed**2 / (s - 1) + v_prob**2 / (m - 1))
        lo, hi = ss.t_interval(y.mean(axis=1), np.sqrt(v_seed + v_prob), df, 0.95)
        assert np.mean((lo <= truth) & (truth <= hi)) >= 0.88, s
