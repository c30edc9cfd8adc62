"""The batch of a training step as :func:`lensrl.train.trainer.collect` and
:func:`~lensrl.train.trainer.score` hand it on, and what the step's log reads from it: the
batch metrics, the sample rows, and the rows behind a non-finite update."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from lensrl.rollout import Rollout


@dataclass(frozen=True)
class Collected:
    """A verified rollout, before scoring (:func:`lensrl.train.trainer.collect`).

    Fields: ``rollout`` (N = P·G rows, G per prompt); ``problems`` (P); ``correct`` ``(N,)``:
    1 right, 0 wrong, NaN when the verifier could not judge.
    """

    rollout: Rollout
    problems: list[Any]
    correct: Tensor


@dataclass(frozen=True)
class ScoredBatch(Collected):
    """A collected batch with π_old and advantages (:func:`lensrl.train.trainer.score`).

    Adds: ``old_logprobs`` ``(N, T)`` π_old per completion token (0 at padding);
    ``advantages`` ``(N,)``; ``diagnostics``: lensrl.core.group_diagnostics.
    """

    old_logprobs: Tensor
    advantages: Tensor
    diagnostics: dict[str, float]


def batch_metrics(batch: ScoredBatch) -> dict[str, float]:
    """The reward, length and advantage metrics of a step's batch (docs/metrics.md)."""
    c = batch.correct
    judged = ~torch.isnan(c)
    lengths = batch.rollout.completion_mask.sum(-1).float()
    adv = batch.advantages
    return {
        "reward/mean": float(c[judged].mean()) if bool(judged.any()) else math.nan,
        "completions/len_mean": float(lengths.mean()),
        "completions/len_max": float(lengths.max()),
        "completions/frac_truncated": float(batch.rollout.truncated.float().mean()),
        "adv/mean": float(adv.mean()),
        "adv/abs_mean": float(adv.abs().mean()),
        "adv/frac_nonzero": float((adv != 0).float().mean()),
        "batch/prompts": float(len(batch.problems)),
    }


def sample_rows(batch: ScoredBatch, prompt: Any, n: int) -> list[dict[str, Any]]:
    """The first ``n`` rows of the batch for samples.jsonl; ``prompt`` formats a problem."""
    G = len(batch.rollout.texts) // max(len(batch.problems), 1)
    rows = []
    for i in range(min(n, len(batch.rollout.texts))):
        p = batch.problems[i // G]
        c = float(batch.correct[i])
        rows.append({"problem_id": p.id, "level": p.level, "problem": p.problem,
                     "prompt": prompt(p), "answer": p.answer, "completion": batch.rollout.texts[i],
                     "reward": None if math.isnan(c) else c,
                     "advantage": float(batch.advantages[i])})
    return rows


def nonfinite_rows(batch: ScoredBatch, rows: Tensor, new_logprobs: list[tuple[Tensor, Tensor]]) -> str:
    """Which of an update's ``rows`` carry a non-finite value (π_old or π_θ log-prob, advantage)
    and their reward, mean log-prob and advantage ranges, for the warning of a skipped update.
    ``new_logprobs``: ``(rows, non-finite mask)`` of π_θ per micro-batch (filled by
    lensrl.train.trainer's update)."""
    mask = batch.rollout.completion_mask.bool()
    old_bad = (~torch.isfinite(batch.old_logprobs) & mask).any(-1)
    adv = batch.advantages if batch.advantages.dim() == 1 else batch.advantages.mean(-1)
    new_bad = torch.zeros_like(old_bad)
    for mb_rows, mb_bad in new_logprobs:
        new_bad[mb_rows.to(new_bad.device)] |= mb_bad.to(new_bad.device)
    kinds = {"π_θ log-prob": new_bad, "π_old log-prob": old_bad, "advantage": ~torch.isfinite(adv)}
    bad = new_bad | old_bad | kinds["advantage"]
    flagged = rows[bad[rows].cpu()]
    where = ", ".join(k for k, m in kinds.items() if bool(m[rows].any()))
    which = flagged if len(flagged) else rows
    lp = (batch.old_logprobs * mask).sum(-1) / mask.sum(-1).clamp(min=1)

    def span(t: Tensor) -> str:
        t = t.float().cpu()
        ok = t[torch.isfinite(t)]
        text = f"[{float(ok.min()):.3g}, {float(ok.max()):.3g}]" if len(ok) else "none finite"
        return text + (f" ({len(t) - len(ok)} non-finite)" if len(ok) < len(t) else "")

    ranges = (f"reward {span(batch.correct[which])}, mean π_old logprob {span(lp[which])}, "
              f"advantage {span(adv[which])}")
    if len(flagged):
        more = f" and {len(flagged) - 8} more" if len(flagged) > 8 else ""
        return (f"row(s) {', '.join(str(int(r)) for r in flagged[:8])}{more} carry it "
                f"(non-finite {where}): {ranges}")
    return f"no row's log-probs or advantage are non-finite (the gradient overflowed); the update's rows: {ranges}"
