"""GRPO's clipped surrogate (Eq. 3), which LENS leaves unchanged, with its aggregations.

Shapes: ``N`` sequences, ``T`` completion tokens (right-padded).
"""

from __future__ import annotations

import torch
from torch import Tensor

from lensrl.core.confidence import masked_mean

AGGREGATIONS: tuple[str, ...] = ("seq_mean_token_mean", "token_mean", "seq_mean_token_sum_norm")


def aggregate(per_token: Tensor, mask: Tensor, mode: str, norm_tokens: int | None = None) -> Tensor:
    """Reduce ``(N, T)`` per-token values to a scalar under ``mask``.

    Modes:
        ``seq_mean_token_mean``: mean over sequences of each sequence's token mean (Eq. 3,
            the paper; verl ``seq-mean-token-mean``).
        ``token_mean``: sum over all tokens ÷ number of tokens (verl's default, DAPO).
        ``seq_mean_token_sum_norm``: sum over all tokens ÷ (N · norm_tokens) (Dr. GRPO); a
            constant normaliser, so long answers are not down-weighted. ``norm_tokens``
            defaults to ``T`` (the padded width); pass the generation limit to make the loss
            independent of padding.
    """
    mask = mask.to(per_token.dtype)
    if mode == "seq_mean_token_mean":
        return masked_mean(per_token, mask).mean()  # mean over rows of (N,) row means
    if mode == "token_mean":
        return masked_mean(per_token.flatten(), mask.flatten())
    if mode == "seq_mean_token_sum_norm":
        width = per_token.shape[-1] if norm_tokens is None else norm_tokens
        return (per_token * mask).sum() / (per_token.shape[0] * width)
    raise ValueError(f"aggregation must be one of {', '.join(AGGREGATIONS)}; got {mode!r}")


def _masked_mean(x: Tensor, mask: Tensor) -> float:
    """Mean of ``x`` over every position ``mask`` sets, as a float (a metric)."""
    return float(masked_mean(x.flatten(), mask.flatten()))


def _check_loss_inputs(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    clip_low: float,
    clip_high: float,
    kl_coef: float,
    ref_logprobs: Tensor | None,
) -> None:
    """A ValueError naming the argument when :func:`policy_loss`'s inputs do not fit together."""
    if logprobs.shape != old_logprobs.shape or logprobs.shape != mask.shape:
        raise ValueError(
            "logprobs, old_logprobs and mask must share one (N, T) shape; got "
            f"{tuple(logprobs.shape)}, {tuple(old_logprobs.shape)}, {tuple(mask.shape)}"
        )
    if advantages.shape not in (logprobs.shape[:1], logprobs.shape):
        raise ValueError(
            f"advantages must be (N,) or (N, T) = {tuple(logprobs.shape)}; "
            f"got {tuple(advantages.shape)}"
        )
    if ref_logprobs is not None and ref_logprobs.shape != logprobs.shape:
        raise ValueError(
            f"ref_logprobs must match logprobs {tuple(logprobs.shape)}; "
            f"got {tuple(ref_logprobs.shape)}"
        )
    if not (0 <= clip_low < 1 and clip_high >= 0):
        raise ValueError(f"need 0 <= clip_low < 1 and clip_high >= 0; got {clip_low}, {clip_high}")
    if kl_coef < 0:
        raise ValueError(f"kl_coef must be >= 0, got {kl_coef}")
    if kl_coef > 0 and ref_logprobs is None:
        raise ValueError("kl_coef > 0 needs ref_logprobs")


def policy_loss(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    aggregation: str = "seq_mean_token_mean",
    kl_coef: float = 0.0,
    ref_logprobs: Tensor | None = None,
    norm_tokens: int | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """Clipped policy-gradient loss to minimise (the negative of Eq. 3), plus optional k3 KL.

    Args:
        logprobs: ``(N, T)`` log π_θ of the sampled tokens (with gradient).
        old_logprobs: ``(N, T)`` log π_old of the same tokens (no gradient).
        advantages: ``(N,)`` one advantage per sequence (broadcast to its tokens), or ``(N, T)``.
        mask: ``(N, T)`` 1 for completion tokens.
        clip_low, clip_high: ρ is clipped to [1 − clip_low, 1 + clip_high] (paper: 0.2, 0.2).
        aggregation: see :func:`aggregate`.
        kl_coef: β of the k3 KL to ``ref_logprobs`` (paper: 0, no KL).
        ref_logprobs: ``(N, T)`` reference-policy log-probs; required when ``kl_coef > 0``.
        norm_tokens: constant for ``seq_mean_token_sum_norm``.

    Returns:
        ``(loss, metrics)``: a scalar tensor, and floats ``loss/policy``, ``loss/kl``,
        ``clip/frac`` (tokens whose clipped branch is active), ``clip/frac_low``,
        ``clip/frac_high``, ``policy/approx_kl`` (mean ½(log ρ)², old → new), ``policy/ratio_mean``.
    """
    _check_loss_inputs(
        logprobs, old_logprobs, advantages, mask, clip_low, clip_high, kl_coef, ref_logprobs
    )
    adv = advantages.to(logprobs.dtype)
    if adv.dim() == 1:
        adv = adv[:, None]  # (N, 1) broadcasts over T
    log_ratio = logprobs - old_logprobs.detach()
    ratio = torch.exp(log_ratio)
    unclipped = ratio * adv
    clipped = ratio.clamp(1.0 - clip_low, 1.0 + clip_high) * adv
    per_token = -torch.minimum(unclipped, clipped)  # (N, T)
    pg_loss = aggregate(per_token, mask, aggregation, norm_tokens)
    loss = pg_loss
    metrics: dict[str, float] = {"loss/policy": float(pg_loss.detach())}
    if ref_logprobs is not None:
        delta = ref_logprobs.detach() - logprobs
        kl = torch.exp(delta) - delta - 1.0  # k3 estimator, ≥ 0
        kl_loss = aggregate(kl, mask, aggregation, norm_tokens)
        loss = loss + kl_coef * kl_loss
        metrics["loss/kl"] = float(kl_loss.detach())
    with torch.no_grad():
        low = (ratio < 1.0 - clip_low) & (adv < 0)
        high = (ratio > 1.0 + clip_high) & (adv > 0)
        metrics["clip/frac_low"] = _masked_mean(low.to(ratio.dtype), mask)
        metrics["clip/frac_high"] = _masked_mean(high.to(ratio.dtype), mask)
        metrics["clip/frac"] = metrics["clip/frac_low"] + metrics["clip/frac_high"]
        metrics["policy/approx_kl"] = _masked_mean(0.5 * log_ratio.square(), mask)
        metrics["policy/ratio_mean"] = _masked_mean(ratio, mask)
    return loss, metrics
