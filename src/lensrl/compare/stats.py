"""Every statistic of a run comparison: tests, intervals, power, multiplicity, the bootstrap.

``lensrl compare``, ``lensrl plan``, the study summary and the eval files' CIs all call these
functions; no other module computes a p, an interval, a power or an adjustment. Pure
numpy/scipy, no I/O. The unit of replication is the training run (a seed): a method's
score on a bucket is one number per run, ``Y[r] = mean_j pass@k[r, j]`` over the bucket's
problems, and the question "is method A better than B" is a question about the distribution of
``Y`` over seeds (docs/evaluation.md §4). Every function here takes those seed-level values.

Shapes: ``s`` seeds (paired designs), ``s_A``/``s_B`` seeds per arm (unpaired), and any number
of leading batch axes ``...`` (many buckets, or many simulated studies at once).
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Sequence

import numpy as np
from scipy import optimize, stats

# Enumerate every relabelling up to this many (sign-flip: s ≤ 12; per problem, the labellings
# of one problem's runs); beyond, draw at random.
MAX_RELABELLINGS = 4096


def _tol(x: np.ndarray) -> np.ndarray:
    # Relabelled sums add the same terms in another order: allow for the rounding.
    tol: np.ndarray = 1e-12 * np.maximum(1.0, np.abs(x))
    return tol


def rng_for(seed: int, *tags: object) -> np.random.Generator:
    """The random stream of one ``(seed, tags...)``: a bucket's or a cell's own stream, so that
    adding a bucket or a comparison never changes the draws of another."""
    return np.random.default_rng([seed, *(zlib.crc32(str(t).encode()) for t in tags)])


def resample_counts(rng: np.random.Generator, m: int, resamples: int) -> np.ndarray:
    """``(B, m)`` how often each of ``m`` items is drawn in each of ``B`` bootstrap resamples."""
    idx = rng.integers(0, m, size=(resamples, m)) + m * np.arange(resamples)[:, None]
    counts: np.ndarray = np.bincount(idx.ravel(), minlength=resamples * m)
    return counts.reshape(resamples, m)


def bootstrap_mean_ci(
    values: np.ndarray,
    *,
    resamples: int = 2000,
    confidence: float = 0.95,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap CI of the mean over problems (the first axis), per column.

    ``values``: ``(m,)`` or ``(m, K)`` per-problem values (pass@k for K values of k, or the
    paired differences of two arms' seed-averaged values: the same problems are drawn for both
    arms, and the runs are held fixed, so this is the uncertainty of *these runs* from the choice
    of problems). Returns ``(lo, hi)``, each of shape ``values.shape[1:]``.
    """
    values = np.asarray(values, dtype=float)
    m = values.shape[0]
    if m == 0:
        raise ValueError("bootstrap over zero problems")
    # Counts instead of an index array: memory (B, m) rather than (B, m, K).
    means = resample_counts(rng, m, resamples) @ values / m  # (B, ...)
    alpha = 1.0 - confidence
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2], axis=0)
    return lo, hi


def problem_permutation_p(
    a: np.ndarray,
    b: np.ndarray,
    *,
    permutations: int = 10000,
    rng: np.random.Generator,
) -> float:
    """Two-sided p of the per-problem permutation test (labels exchanged within problems).

    ``a``: ``(s_A, m)``, ``b``: ``(s_B, m)``. H0: *all runs are identical* (for each problem
    the ``s_A + s_B`` values are exchangeable). With one seed per method this is the sign-flip
    test on per-problem differences: it asks whether two checkpoints differ, not whether the
    method matters (a seed's effect is shared by all of its problems, and relabelling per
    problem averages it away). ``p = (1 + hits) / (1 + permutations)``.
    """
    s_a, m = a.shape
    pooled = np.concatenate([a, b], axis=0).T  # (m, s_A + s_B)
    total = pooled.sum(axis=1, keepdims=True)
    observed = float((a.mean(axis=0) - b.mean(axis=0)).mean())
    s_tot = pooled.shape[1]
    s_b = s_tot - s_a
    scale = 1 / s_a + 1 / s_b
    tol = 1e-12 * max(1.0, abs(observed))
    # Δ_j for a labelling S (|S| = s_A) is sum_S v (1/s_A + 1/s_B) − T/s_B: tabulate every S
    # when there are few, so one replicate is one random column per problem.
    enumerate_all = math.comb(s_tot, s_a) <= MAX_RELABELLINGS
    if enumerate_all:
        subsets = np.array(list(itertools.combinations(range(s_tot), s_a)))  # (S, s_A)
        table = pooled[:, subsets].sum(axis=2) * scale - total / s_b  # (m, S)
    hits = 0
    chunk = max(1, 2_000_000 // (m * (1 if enumerate_all else s_tot)))
    for start in range(0, permutations, chunk):
        size = min(chunk, permutations - start)
        if enumerate_all:
            pick = rng.integers(0, table.shape[1], size=(m, size))
            stat = np.take_along_axis(table, pick, axis=1).mean(axis=0)  # (chunk,)
        else:
            shuffled = rng.permuted(np.broadcast_to(pooled, (size, m, s_tot)), axis=2)
            stat = (shuffled[..., :s_a].sum(axis=2) * scale - total.T / s_b).mean(axis=1)
        hits += int((np.abs(stat) >= abs(observed) - tol).sum())
    return (1 + hits) / (1 + permutations)


def sign_flip_p(
    d: np.ndarray, *, permutations: int = 10000, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Two-sided p of the sign-flip test of ``mean(d) = 0`` for paired seed-level differences.

    ``d``: ``(..., s)``. H0: the method label does not matter within a seed pair, so each
    ``d[r]`` is as likely to be ``−d[r]``. Exact (all ``2^s`` sign patterns, the observed one
    included, ``p = #{|mean(ε·d)| ≥ |mean(d)|} / 2^s``) when ``2^s ≤ MAX_RELABELLINGS``;
    otherwise ``permutations`` random patterns with ``p = (1 + hits) / (1 + permutations)``.
    Returns ``(...)``. The smallest attainable p is :func:`smallest_p` (2/2^s when exact).
    """
    d = np.asarray(d, dtype=float)
    s = d.shape[-1]
    obs = np.abs(d.mean(axis=-1))
    if 2**s <= MAX_RELABELLINGS:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=s)))  # (2^s, s)
        stat = np.abs(d @ signs.T) / s  # (..., 2^s)
        hits = (stat >= (obs - _tol(obs))[..., None]).sum(axis=-1)
        p: np.ndarray = hits / signs.shape[0]
        return p
    rng = rng if rng is not None else np.random.default_rng(0)
    signs = rng.choice((1.0, -1.0), size=(permutations, s))
    stat = np.abs(d @ signs.T) / s
    hits = (stat >= (obs - _tol(obs))[..., None]).sum(axis=-1)
    p = (1 + hits) / (1 + permutations)
    return p


def run_permutation_p(
    a: np.ndarray,
    b: np.ndarray,
    *,
    permutations: int = 10000,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Two-sided p of the whole-run permutation test of ``mean(a) − mean(b) = 0`` (unpaired).

    ``a``: ``(..., s_A)``, ``b``: ``(..., s_B)`` seed-level values. H0: the method does not
    matter, so the ``s_A + s_B`` runs are exchangeable; every relabelling of which runs are "A"
    is enumerated when there are at most ``MAX_RELABELLINGS`` (else ``permutations`` random
    ones, ``p = (1 + hits) / (1 + permutations)``). Returns ``(...)``.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    s_a, s_b = a.shape[-1], b.shape[-1]
    pooled = np.concatenate([a, b], axis=-1)  # (..., N)
    total = pooled.sum(axis=-1, keepdims=True)
    obs = np.abs(a.mean(axis=-1) - b.mean(axis=-1))
    n = s_a + s_b
    exact = math.comb(n, s_a) <= MAX_RELABELLINGS
    if exact:
        subsets = list(itertools.combinations(range(n), s_a))
        member = np.zeros((len(subsets), n))
        for i, sub in enumerate(subsets):
            member[i, list(sub)] = 1.0
    else:
        rng = rng if rng is not None else np.random.default_rng(0)
        order = np.argsort(rng.random((permutations, n)), axis=1)[:, :s_a]
        member = np.zeros((permutations, n))
        np.put_along_axis(member, order, 1.0, axis=1)
    sum_a = pooled @ member.T  # (..., L)
    stat = np.abs(sum_a / s_a - (total - sum_a) / s_b)
    hits = (stat >= (obs - _tol(obs))[..., None]).sum(axis=-1)
    p: np.ndarray = hits / member.shape[0] if exact else (1 + hits) / (1 + permutations)
    return p


def smallest_p(*, paired: bool, s_a: int, s_b: int, permutations: int = 10000) -> float:
    """The smallest p the seed-level randomization test can return for this design.

    Paired over ``s`` pairs: ``2 / 2^s`` (the observed signs and their mirror image). Unpaired:
    ``2 / C(s_A + s_B, s_A)`` for equal arms (a relabelling and its swap give the same |Δ|),
    ``1 / C(...)`` otherwise. Random relabellings: ``1 / (1 + permutations)``. When this exceeds
    α, no data can make the test significant: more seeds are needed, not a better method.
    """
    count = 2**s_a if paired else math.comb(s_a + s_b, s_a)
    if count > MAX_RELABELLINGS:
        return 1.0 / (1 + permutations)
    return (2.0 if paired or s_a == s_b else 1.0) / count


def t_interval(
    estimate: np.ndarray | float, se: np.ndarray | float, df: np.ndarray | float, confidence: float
) -> tuple[np.ndarray, np.ndarray]:
    """``estimate ± t_{df, (1+confidence)/2} · se``."""
    q = stats.t.ppf(0.5 + confidence / 2, df)
    est = np.asarray(estimate, dtype=float)
    return est - q * np.asarray(se), est + q * np.asarray(se)


def paired_se(d: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """``(mean, se, df)`` of paired differences ``d: (..., s)``: ``sd/√s`` with ``s − 1`` df
    (se ``nan`` and df 0 when ``s = 1``)."""
    d = np.asarray(d, dtype=float)
    s = d.shape[-1]
    if s < 2:  # one difference has no spread to estimate
        return d.mean(axis=-1), np.full(d.shape[:-1], math.nan), 0
    return d.mean(axis=-1), d.std(axis=-1, ddof=1) / math.sqrt(s), s - 1


def welch_se(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(difference, se, df)`` of ``mean(a) − mean(b)`` with Welch–Satterthwaite df.

    ``a: (..., s_A)``, ``b: (..., s_B)``, both with at least 2 seeds. When both arms have zero
    variance the df is undefined; it is then set to ``s_A + s_B − 2`` (the se is 0 anyway).
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    s_a, s_b = a.shape[-1], b.shape[-1]
    va, vb = a.var(axis=-1, ddof=1) / s_a, b.var(axis=-1, ddof=1) / s_b
    se = np.sqrt(va + vb)
    denom = va**2 / (s_a - 1) + vb**2 / (s_b - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        df = np.where(denom > 0, (va + vb) ** 2 / np.where(denom > 0, denom, 1.0), s_a + s_b - 2)
    return a.mean(axis=-1) - b.mean(axis=-1), se, df


def t_test_p(estimate: np.ndarray, se: np.ndarray, df: np.ndarray | float) -> np.ndarray:
    """Two-sided t-test p of ``estimate = 0``; 1 when ``estimate = se = 0``."""
    est, se = np.asarray(estimate, dtype=float), np.asarray(se, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(se > 0, est / np.where(se > 0, se, 1.0), np.where(est == 0, 0.0, np.inf))
    p: np.ndarray = 2 * stats.t.sf(np.abs(t), df)
    return p


def t_power(delta: float, se: float, df: float, *, alpha: float = 0.05) -> float:
    """Power of the two-sided level-``alpha`` t test when the true difference is ``delta``.

    The statistic is noncentral t with ``df`` degrees of freedom and noncentrality
    ``delta / se`` (scipy.stats.nct); both rejection tails are counted.
    """
    if se <= 0:
        return 1.0 if delta != 0 else alpha
    crit = stats.t.ppf(1 - alpha / 2, df)
    ncp = abs(delta) / se
    # The far tail is below 1e-30 where scipy returns nan for a large noncentrality.
    far = float(np.nan_to_num(stats.nct.cdf(-crit, df, ncp), nan=0.0))
    return float(stats.nct.sf(crit, df, ncp)) + far


def mde(se: float, df: float, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """Minimum detectable effect: the true difference the t test finds with ``power``.

    Solves :func:`t_power` ``= power`` for ``delta ≥ 0``; ``nan`` when ``se`` is not finite or
    ``df < 1``; 0 when ``se = 0``.
    """
    if not math.isfinite(se) or not df >= 1:
        return math.nan
    if se == 0:
        return 0.0
    hi = se * 10.0
    while t_power(hi, se, df, alpha=alpha) < power:
        hi *= 2.0
    return float(optimize.brentq(lambda x: t_power(x, se, df, alpha=alpha) - power, 0.0, hi))


def tost_p(estimate: float, se: float, df: float, margin: float) -> float:
    """p of the two one-sided t tests (TOST) of ``|Δ| < margin`` (equivalence).

    ``max(P(T ≥ (Δ + margin)/se), P(T ≤ (Δ − margin)/se))`` under t with ``df``; "no difference
    larger than ``margin``" is supported at level α when this is below α, i.e. when the
    ``1 − 2α`` t interval lies inside ``(−margin, margin)``.
    """
    if margin <= 0:
        raise ValueError(f"--margin must be > 0, got {margin}")
    if se <= 0:
        return 0.0 if abs(estimate) < margin else 1.0
    lower = float(stats.t.sf((estimate + margin) / se, df))
    upper = float(stats.t.cdf((estimate - margin) / se, df))
    return max(lower, upper)


def holm(p: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error rate), in the input order.

    ``p_(i)`` sorted ascending becomes ``max_{j ≤ i} min(1, (m − j + 1) · p_(j))``.
    """
    arr = np.asarray(p, dtype=float)
    m = arr.size
    if m == 0:
        return arr
    order = np.argsort(arr, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * arr[order])
    out = np.empty(m)
    out[order] = np.maximum.accumulate(scaled)
    return out


def bh(p: Sequence[float]) -> np.ndarray:
    """Benjamini–Hochberg q-values (false discovery rate), in the input order (scipy)."""
    arr = np.asarray(p, dtype=float)
    if arr.size == 0:
        return arr
    q: np.ndarray = stats.false_discovery_control(arr, method="bh")
    return q


def jackknife_var_pass_at_k(n: np.ndarray, c: np.ndarray, k: int) -> np.ndarray:
    """``(m,)`` evaluation-noise variance of each problem's pass@k estimate (delete-one jackknife).

    Deleting one of the ``n`` completions leaves ``(n − 1, c − 1)`` (a correct one, ``c`` ways)
    or ``(n − 1, c)`` (a wrong one, ``n − c`` ways); the jackknife variance is
    ``(n − 1)/n · Σ_i (θ_(i) − θ̄)²``. For pass@1 this is ``p̂(1 − p̂)/(n − 1)``. ``nan`` where
    ``k > n − 1`` (no delete-one estimate exists).
    """
    from lensrl.eval.passk import pass_at_k

    out = np.full(len(n), math.nan)
    for j, (nj, cj) in enumerate(zip(np.asarray(n).tolist(), np.asarray(c).tolist())):
        if k > nj - 1:
            continue
        right = pass_at_k(nj - 1, cj - 1, k) if cj > 0 else 0.0
        wrong = pass_at_k(nj - 1, cj, k) if cj < nj else 0.0
        mean = (cj * right + (nj - cj) * wrong) / nj
        out[j] = (nj - 1) / nj * (cj * (right - mean) ** 2 + (nj - cj) * (wrong - mean) ** 2)
    return out


def seeds_needed(
    sd: float,
    delta: float,
    *,
    paired: bool,
    alpha: float = 0.05,
    power: float = 0.8,
    max_seeds: int = 1000,
) -> int | None:
    """Seeds per method for the seed-level test to detect ``delta`` with ``power`` at ``alpha``.

    ``sd``: the seed-level sd of the paired differences (paired) or of one arm's run scores
    (unpaired, both arms assumed alike). The count is the smallest ``s`` for which both the t
    test reaches ``power`` (df ``s − 1`` paired, ``2s − 2`` unpaired) and the exact
    randomization test can reach ``alpha`` at all (:func:`smallest_p`). None above
    ``max_seeds``.
    """
    if delta <= 0:
        raise ValueError(f"--delta must be > 0, got {delta}")
    for s in range(2, max_seeds + 1):
        if smallest_p(paired=paired, s_a=s, s_b=s) > alpha:
            continue
        se = sd / math.sqrt(s) if paired else sd * math.sqrt(2.0 / s)
        df = s - 1 if paired else 2 * s - 2
        if t_power(delta, se, df, alpha=alpha) >= power:
            return s
    return None
