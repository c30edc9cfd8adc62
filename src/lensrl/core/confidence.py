"""Length-normalised sequence confidence, π̄ (docs/algorithm.md §6 fact 3).

Shapes: ``N`` sequences, ``T`` completion tokens (right-padded).
"""

from __future__ import annotations

import torch
from torch import Tensor


def masked_mean(values: Tensor, mask: Tensor, dim: int = -1) -> Tensor:
    """Mean of ``values`` over ``dim`` counting only positions where ``mask`` is set.

    A row with no masked position gives 0 (not NaN), so padding-only rows are harmless.
    """
    mask = mask.to(values.dtype)
    total = (values * mask).sum(dim)
    count = mask.sum(dim).clamp(min=1.0)
    return total / count


def _drop_last_token(mask: Tensor, keep_rows: Tensor) -> Tensor:
    """Clear the last set position of each row of ``mask`` except in ``keep_rows``."""
    mask = mask.bool()
    length = mask.sum(-1)  # (N,)
    positions = torch.arange(mask.shape[-1], device=mask.device)  # (T,)
    # The last valid token of a right-padded row sits at index length - 1; rows whose only
    # token is that one keep it, so every non-empty row still has a confidence of its own.
    last = (positions[None, :] == (length - 1)[:, None]) & (length > 1)[:, None]  # (N, T)
    return mask & ~(last & ~keep_rows[:, None])


def sequence_mean_logprob(
    logprobs: Tensor,
    mask: Tensor,
    *,
    exclude_eos: bool = False,
    truncated: Tensor | None = None,
) -> Tensor:
    """Masked mean of per-token log-probs: ``log π̄`` for each sequence.

    Args:
        logprobs: ``(N, T)`` per-token log-probs of the sampled tokens under π_old.
        mask: ``(N, T)`` 1 for completion tokens (EOS included), 0 for padding.
        exclude_eos: drop each row's final token (its EOS) from the mean. Default ``False``:
            the EOS is a token the policy chose, and verl's ``masked_mean(old_log_probs,
            response_mask)`` (the paper's stack) counts it.
        truncated: ``(N,)`` bool, rows that hit the length limit and so end without an EOS;
            with ``exclude_eos`` their last token is kept. ``None`` means no row was truncated.

    Returns:
        ``(N,)`` mean log-prob, ≤ 0 for proper log-probs; 0 for a row with an empty mask.
    """
    if logprobs.shape != mask.shape or logprobs.dim() != 2:
        raise ValueError(
            f"logprobs and mask must both be (N, T); got {tuple(logprobs.shape)} and "
            f"{tuple(mask.shape)}"
        )
    if exclude_eos:
        keep = (
            torch.zeros(mask.shape[0], dtype=torch.bool, device=mask.device)
            if truncated is None
            else truncated.bool()
        )
        mask = _drop_last_token(mask, keep)
    return masked_mean(logprobs, mask)


def sequence_confidence(
    logprobs: Tensor,
    mask: Tensor,
    *,
    exclude_eos: bool = False,
    truncated: Tensor | None = None,
) -> Tensor:
    """π̄ = π_old(o|q)^(1/|o|) = exp(masked mean token log-prob) (docs/algorithm.md §6 fact 3).

    Computed in log space: the product of hundreds of token probabilities underflows, its
    geometric mean does not. No clipping and no temperature, as in the paper.

    Args and defaults as :func:`sequence_mean_logprob`. Returns ``(N,)`` values in ``[0, 1]``.
    """
    mean_lp = sequence_mean_logprob(logprobs, mask, exclude_eos=exclude_eos, truncated=truncated)
    return torch.exp(mean_lp.clamp(max=0.0))
