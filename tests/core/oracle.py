"""A slow, plain-Python oracle for ``compute_advantages``, written from the spec, not from core.

One group at a time, with floats and :mod:`math` only (no torch), so that a vectorisation or
masking slip in ``lensrl.core`` cannot be copied into the reference. The spec (docs/algorithm.md
§1, §6):

- a verdict is 1.0, 0.0 or NaN; NaN samples drop out of the group (mean, std, D, type and the
  ``n`` of 1/n) and get 0; a group with fewer than two judged samples is all 0;
- π̄ = exp(mean log-prob); r̃ = r − (1 − r)·(1/n)·π̄/(D − π̄);
- mixed: D = max(D_imp, d_floor·max π̄), D_imp = ((1/n) Σ r_i/π̄_i)^−1, advantage z-scored;
- negative: D = d_floor·max π̄, advantage α·(r̃ − mean);
- positive: 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs)


def _std(xs: Sequence[float], ddof: int) -> float:
    m = _mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - ddof))


def _zscore(xs: Sequence[float], ddof: int, eps: float) -> list[float]:
    m = _mean(xs)
    s = _std(xs, ddof)
    if s == 0.0:  # all-equal group: no signal (and no 0/0 when eps = 0)
        return [0.0 for _ in xs]
    return [(x - m) / (s + eps) for x in xs]


def _demean(xs: Sequence[float]) -> list[float]:
    m = _mean(xs)
    return [x - m for x in xs]


def lens_normaliser(r: Sequence[float], pbar: Sequence[float], d_floor: float) -> float:
    """D(q) for a group of judged samples (mixed or negative)."""
    floor = d_floor * max(pbar)
    if sum(r) == 0:
        return floor
    inv = 0.0
    for ri, pi in zip(r, pbar):
        if ri == 1.0:
            inv += math.inf if pi == 0.0 else 1.0 / pi
    d_imp = 0.0 if math.isinf(inv) else len(r) / inv
    return max(d_imp, floor)


def calibrated_rewards(r: Sequence[float], pbar: Sequence[float], d_floor: float) -> list[float]:
    """r̃ for the judged samples of one mixed or negative group (docs/algorithm.md §1)."""
    n = len(r)
    D = lens_normaliser(r, pbar, d_floor)
    out = []
    for ri, pi in zip(r, pbar):
        if ri == 1.0:
            out.append(1.0)
        elif pi == 0.0:
            out.append(0.0)
        else:
            out.append(-(1.0 / n) * pi / (D - pi))
    return out


def oracle_group(
    correct: Sequence[float],
    mean_logprob: Sequence[float],
    *,
    estimator: str,
    alpha: float = 0.25,
    std_ddof: int = 1,
    eps: float = 1e-6,
    d_floor: float = 2.0,
) -> list[float]:
    """Advantages for one group of G samples."""
    G = len(correct)
    idx = [i for i in range(G) if not math.isnan(correct[i])]
    out = [0.0] * G
    if len(idx) < 2:
        return out
    r = [float(correct[i]) for i in idx]
    pbar = [math.exp(min(float(mean_logprob[i]), 0.0)) for i in idx]
    right = sum(r)
    kind = "negative" if right == 0 else "positive" if right == len(r) else "mixed"

    if estimator == "nsr":
        adv = [-1.0 if x == 0.0 else 0.0 for x in r]
    elif estimator == "grpo":
        adv = _zscore(r, std_ddof, eps)
    elif estimator == "dr_grpo":
        adv = _demean(r)
    elif estimator in ("lens", "lens_mixed_only", "lens_negative_only"):
        if kind == "positive":
            adv = [0.0] * len(r)
        elif kind == "negative":
            use = estimator != "lens_mixed_only"
            adv = [alpha * x if use else 0.0 for x in _demean(calibrated_rewards(r, pbar, d_floor))]
        elif estimator == "lens_negative_only":
            adv = _zscore(r, std_ddof, eps)
        else:
            adv = _zscore(calibrated_rewards(r, pbar, d_floor), std_ddof, eps)
    else:
        raise KeyError(estimator)
    for i, a in zip(idx, adv):
        out[i] = a
    return out


def oracle(
    correct: Sequence[float], mean_logprob: Sequence[float], *, group_size: int, **kwargs: object
) -> list[float]:
    """Advantages for consecutive groups of ``group_size``."""
    out: list[float] = []
    for start in range(0, len(correct), group_size):
        stop = start + group_size
        out += oracle_group(correct[start:stop], mean_logprob[start:stop], **kwargs)  # type: ignore[arg-type]
    return out
