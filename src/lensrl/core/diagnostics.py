"""The numbers that show whether LENS is doing anything, as flat slash-namespaced metrics.

Keys are explained, with healthy ranges, in docs/metrics.md.
"""

from __future__ import annotations

import math

from torch import Tensor

from lensrl.core.advantages import LENS_D_FLOOR, group_stats


def _mean(values: Tensor) -> float:
    """Mean of a 1-D tensor as a float; NaN for an empty one (an undefined mean, not 0)."""
    return float(values.mean()) if values.numel() else math.nan


def group_diagnostics(
    correct: Tensor,
    seq_mean_logprob: Tensor,
    advantages: Tensor,
    *,
    group_size: int,
    d_floor: float = LENS_D_FLOOR,
) -> dict[str, float]:
    """Group-type fractions and LENS internals for one batch.

    Args:
        correct: ``(N,)`` 1.0 / 0.0 / NaN.
        seq_mean_logprob: ``(N,)`` log π̄ under π_old.
        advantages: ``(N,)`` the advantages actually used (any estimator).
        group_size: ``G``.
        d_floor: as in :func:`compute_advantages`.

    Returns a dict with always the same keys (NaN where a mean is over nothing):
        ``groups/frac_negative``, ``groups/frac_mixed``, ``groups/frac_positive``: shares of
            all ``P`` groups; ``groups/frac_unscored``: groups with < 2 judged samples;
        ``lens/D_mean``: mean D(q) over mixed and negative groups;
        ``lens/conf_wrong_mean``, ``lens/conf_right_mean``: mean π̄ of judged wrong / right;
        ``lens/calibrated_reward_wrong_mean``: mean r̃ of wrong samples in mixed and negative
            groups, in [−1/G, 0);
        ``lens/adv_share_negative``: Σ|A| over negative groups ÷ Σ|A| over all (0 for GRPO);
        ``verify/frac_unjudged``: share of samples with a NaN verdict.
    """
    s = group_stats(correct, seq_mean_logprob, group_size=group_size, d_floor=d_floor)
    if advantages.shape != correct.shape:
        raise ValueError(
            f"advantages must match correct {tuple(correct.shape)}; got {tuple(advantages.shape)}"
        )
    P = s.valid.numel()
    scored = s.negative | s.mixed
    wrong = s.judged & (s.r == 0)
    right = s.judged & (s.r == 1)
    abs_adv = advantages.detach().double().reshape(P, group_size).abs()
    total = float(abs_adv.sum())
    return {
        "groups/frac_negative": float(s.negative.sum()) / P,
        "groups/frac_mixed": float(s.mixed.sum()) / P,
        "groups/frac_positive": float(s.positive.sum()) / P,
        "groups/frac_unscored": float((~s.valid).sum()) / P,
        "lens/D_mean": _mean(s.D[scored]),
        "lens/conf_wrong_mean": _mean(s.pbar[wrong]),
        "lens/conf_right_mean": _mean(s.pbar[right]),
        "lens/calibrated_reward_wrong_mean": _mean(s.calibrated[wrong & scored[:, None]]),
        "lens/adv_share_negative": float(abs_adv[s.negative].sum()) / total if total > 0 else 0.0,
        "verify/frac_unjudged": float((~s.judged).sum()) / s.judged.numel(),
    }
