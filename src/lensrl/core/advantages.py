"""Advantages for GRPO, Dr. GRPO, LENS and its ablations, and the uniform-negative baseline.

Vocabulary: ``P`` prompts, ``G`` samples per prompt (``group_size``), ``N = P·G`` sequences,
laid out as consecutive groups: rows ``[p·G, (p+1)·G)`` belong to prompt ``p``.

``correct`` holds 1.0 (right), 0.0 (wrong) or NaN ("cannot judge"). A NaN sample is left out
of its group's statistics (mean, std, D, group type, and the G of 1/G, which counts judged
samples) and gets advantage 0; a group with fewer than two judged samples gets 0 everywhere,
for every estimator.

Everything is computed in float64 and returned in the promoted floating dtype of the inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

ESTIMATORS: tuple[str, ...] = (
    "grpo",
    "dr_grpo",
    "lens",
    "lens_mixed_only",
    "lens_negative_only",
    "nsr",
)

# The paper's LENS hyperparameters (docs/algorithm.md §5): the one home of these numbers; lensrl's config
# and the TRL and verl adapters take their defaults from here.
LENS_ALPHA = 0.25  # α: weight of the negative groups' calibrated rewards
LENS_D_FLOOR = 2.0  # D(q) ≥ d_floor · max π̄


@dataclass(frozen=True)
class GroupStats:
    """Per-group quantities shared by the estimators and the diagnostics.

    Fields (``P`` groups of ``G``):
        r: ``(P, G)`` rewards with unjudged samples set to 0.
        judged: ``(P, G)`` bool, the sample has a verdict.
        n: ``(P,)`` judged samples per group (the G of 1/G).
        valid, negative, mixed, positive: ``(P,)`` bool; ``valid`` = at least two judged;
            the three types partition the valid groups.
        pbar: ``(P, G)`` confidence π̄ = exp(mean log-prob); 0 where unjudged.
        D: ``(P,)`` the LENS normaliser D(q) (the paper's Eq. 14 with the ``d_floor`` floor,
            docs/algorithm.md §1); 0 where unused.
        calibrated: ``(P, G)`` r̃ (docs/algorithm.md §1); 0 where unjudged.
    """

    r: Tensor
    judged: Tensor
    n: Tensor
    valid: Tensor
    negative: Tensor
    mixed: Tensor
    positive: Tensor
    pbar: Tensor
    D: Tensor
    calibrated: Tensor


@dataclass(frozen=True)
class GroupTypes:
    """``(P,)`` bool each: ``valid`` = at least two judged samples; ``negative`` (all judged
    wrong), ``mixed`` and ``positive`` (all judged right) partition the valid groups."""

    valid: Tensor
    negative: Tensor
    mixed: Tensor
    positive: Tensor


def group_types(correct: Tensor, *, group_size: int) -> GroupTypes:
    """The type of each group of ``correct`` ``(N,)`` (1.0 / 0.0 / NaN), as every estimator
    sees it (NaN samples left out)."""
    _check_inputs(correct, torch.zeros_like(correct, dtype=torch.float64), group_size, 2.0)
    return _types(correct.detach().double().reshape(-1, group_size))


def _types(values: Tensor) -> GroupTypes:
    judged = ~torch.isnan(values)
    n = judged.sum(-1)
    n_right = torch.where(judged, values, torch.zeros_like(values)).sum(-1)
    valid = n >= 2
    negative = valid & (n_right == 0)
    positive = valid & (n_right == n)
    return GroupTypes(valid, negative, valid & ~negative & ~positive, positive)


def _check_inputs(
    correct: Tensor, seq_mean_logprob: Tensor, group_size: int, d_floor: float
) -> None:
    if correct.dim() != 1 or seq_mean_logprob.shape != correct.shape:
        raise ValueError(
            "correct and seq_mean_logprob must both be (N,); got "
            f"{tuple(correct.shape)} and {tuple(seq_mean_logprob.shape)}"
        )
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"group_size must be a positive int, got {group_size!r}")
    if correct.numel() % group_size:
        raise ValueError(
            f"N = {correct.numel()} samples do not split into groups of group_size = {group_size}"
        )
    if not d_floor > 1.0:
        raise ValueError(f"d_floor must be > 1 so that D(q) > π̄ (got {d_floor})")
    values = correct.double()
    judged = ~torch.isnan(values)
    if not bool(((values[judged] == 0) | (values[judged] == 1)).all()):
        raise ValueError("correct must hold only 1.0, 0.0 or NaN (cannot judge)")
    lp = seq_mean_logprob.double()[judged]
    if bool(torch.isnan(lp).any() | torch.isposinf(lp).any()):
        raise ValueError("seq_mean_logprob must be finite (or -inf) for every judged sample")


def group_stats(
    correct: Tensor, seq_mean_logprob: Tensor, *, group_size: int, d_floor: float = LENS_D_FLOOR
) -> GroupStats:
    """Group types, π̄, D(q) and calibrated rewards r̃ (docs/algorithm.md §1, §6 facts 1–7).

    Args:
        correct: ``(N,)`` 1.0 / 0.0 / NaN.
        seq_mean_logprob: ``(N,)`` masked mean token log-prob under π_old (no gradient).
        group_size: ``G``.
        d_floor: the factor in D(q) ≥ d_floor · max π̄ (paper: 2). Must exceed 1.

    Open choice (docs/algorithm.md §4 choice 1): D_imp uses the length-normalised π̄, not the raw sequence
    probability, so the max() in D(q) can bind (see docs/algorithm.md).
    """
    _check_inputs(correct, seq_mean_logprob, group_size, d_floor)
    G = group_size
    values = correct.detach().double().reshape(-1, G)  # (P, G)
    judged = ~torch.isnan(values)
    r = torch.where(judged, values, torch.zeros_like(values))
    n = judged.sum(-1)  # (P,)
    types = _types(values)
    valid, negative, mixed, positive = types.valid, types.negative, types.mixed, types.positive

    lp = seq_mean_logprob.detach().double().reshape(-1, G).clamp(max=0.0)
    pbar = torch.where(judged, torch.exp(torch.where(judged, lp, 0.0)), 0.0)  # (P, G)
    d_min = d_floor * pbar.amax(-1)  # (P,)
    # D_imp = ((1/n) Σ r_i / π̄_i)^-1 (Eq. 14); π̄ = 0 on a right sample makes it 0.
    inv_p = torch.where(r > 0, r / pbar, 0.0)
    d_imp = n.double() / inv_p.sum(-1).clamp(min=torch.finfo(torch.float64).tiny)
    D = torch.where(mixed, torch.maximum(d_imp, d_min), torch.where(negative, d_min, 0.0))

    gap = D[:, None] - pbar  # ≥ (d_floor − 1) · max π̄ > 0 unless every π̄ is 0
    ratio = torch.where(gap > 0, pbar / gap.clamp(min=torch.finfo(torch.float64).tiny), 0.0)
    inv_n = 1.0 / n.clamp(min=1).double()
    calibrated = r - (1.0 - r) * inv_n[:, None] * ratio  # (P, G), r̃ (docs/algorithm.md §1)
    calibrated = torch.where(judged & (negative | mixed)[:, None], calibrated, r)
    return GroupStats(r, judged, n, valid, negative, mixed, positive, pbar, D, calibrated)


def _masked_center(x: Tensor, judged: Tensor, n: Tensor) -> Tensor:
    """``x − mean(x)`` per row over judged entries; ``(P, G)``."""
    mean = (x * judged).sum(-1) / n.clamp(min=1)
    return x - mean[:, None]


def _masked_std(centered: Tensor, judged: Tensor, n: Tensor, ddof: int) -> Tensor:
    """Standard deviation per row over judged entries, from already centred values; ``(P,)``."""
    var = (centered.square() * judged).sum(-1) / (n - ddof).clamp(min=1)
    return var.sqrt()


def compute_advantages(
    correct: Tensor,
    seq_mean_logprob: Tensor,
    *,
    group_size: int,
    estimator: str = "lens",
    alpha: float = LENS_ALPHA,
    std_ddof: int = 1,
    eps: float = 1e-6,
    d_floor: float = LENS_D_FLOOR,
) -> Tensor:
    """Per-sequence advantages ``(N,)`` for one batch of ``P`` groups of ``G``.

    Estimators:
        ``grpo``: (r − mean) / (std + eps) per group (Eq. 2); all-equal groups give 0.
        ``dr_grpo``: r − mean, no std (Dr. GRPO).
        ``lens``: mixed groups z-score the calibrated rewards r̃; negative groups get
            α · (r̃ − mean) (de-meaning only); positive groups 0 (docs/algorithm.md §6 facts 8–10).
        ``lens_mixed_only``: ``lens`` with negative groups at 0 (Table 2 ablation).
        ``lens_negative_only``: ``lens`` with mixed groups as plain GRPO (Table 2 ablation).
        ``nsr``: −1 for wrong samples, 0 for right ones, no normalisation (uniform negative
            reinforcement, Zhu et al. 2025).

    Args:
        correct: ``(N,)`` 1.0 / 0.0 / NaN ("cannot judge"); bool and int are accepted.
        seq_mean_logprob: ``(N,)`` log π̄ under π_old (see ``sequence_mean_logprob``); used
            only by the LENS estimators, treated as a constant (no gradient).
        group_size: ``G``; ``N`` must be a multiple of it.
        alpha: weight of negative groups (paper: 0.25).
        std_ddof: 1 = unbiased std as ``torch.std`` in verl (the paper's stack); 0 = population.
        eps: added to the std (verl: 1e-6; TRL uses 1e-4).
        d_floor: D(q) ≥ d_floor · max π̄ (paper: 2).

    Returns:
        ``(N,)`` advantages, 0 for unjudged samples and groups with < 2 judged samples.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {', '.join(ESTIMATORS)}; got {estimator!r}")
    if std_ddof not in (0, 1):
        raise ValueError(f"std_ddof must be 0 or 1, got {std_ddof!r}")
    if not alpha >= 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    if not eps >= 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    dtype = torch.promote_types(
        correct.dtype if correct.is_floating_point() else torch.float32,
        seq_mean_logprob.dtype if seq_mean_logprob.is_floating_point() else torch.float32,
    )
    s = group_stats(correct, seq_mean_logprob, group_size=group_size, d_floor=d_floor)
    J = s.judged

    def zscore(x: Tensor) -> Tensor:
        centered = _masked_center(x, J, s.n)
        return centered / (_masked_std(centered, J, s.n, std_ddof)[:, None] + eps)

    zero = torch.zeros_like(s.r)
    if estimator == "nsr":
        adv = torch.where(s.valid[:, None], s.r - 1.0, zero)
    elif estimator == "dr_grpo":
        adv = torch.where(s.mixed[:, None], _masked_center(s.r, J, s.n), zero)
    elif estimator == "grpo":
        adv = torch.where(s.mixed[:, None], zscore(s.r), zero)
    else:
        mixed_adv = zscore(s.r if estimator == "lens_negative_only" else s.calibrated)
        use_negative = estimator != "lens_mixed_only"
        negative_adv = alpha * _masked_center(s.calibrated, J, s.n)
        adv = torch.where(s.mixed[:, None], mixed_adv, zero)
        adv = torch.where((s.negative & use_negative)[:, None], negative_adv, adv)
    adv = torch.where(J, adv, zero)
    return adv.reshape(-1).to(dtype)
