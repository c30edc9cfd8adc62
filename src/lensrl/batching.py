"""Micro-batches with little padding: rows sorted by length, padding columns trimmed.

A rollout's rows are padded to its longest prompt (left) and longest completion (right). In an
update every padded position costs a full forward and backward, and with varied completion
lengths a third or more of them are padding (docs/benchmarks.md). So the rows to train are
sorted by length and cut into micro-batches of similar rows, and each micro-batch drops the
columns that are padding in all of its rows. This changes no value: the model is causal,
position ids come from the attention mask, and padding is masked out of attention and loss;
only the float summation order differs.

Shapes: ``N`` rows of the rollout, ``R`` rows to train (a subset), ``Lp`` prompt columns,
``T`` completion columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

# What one more forward + backward call costs beyond its positions, in padded positions per
# row: the per-call overhead of a small model's layers. It only decides how many micro-batches
# to cut; a wrong value costs speed, never correctness.
CALL_COST_POSITIONS = 64


@dataclass(frozen=True)
class MicroBatch:
    """Rows of one micro-batch and the columns they need.

    Fields:
        rows: ``(r,)`` row indices into the rollout.
        prompt_len: the longest prompt among the rows; prompt columns before the last
            ``prompt_len`` are left padding for all of them.
        completion_len: ``T_c``, the longest completion among the rows; columns after
            ``Lp + T_c`` are padding for all of them.
    """

    rows: Tensor
    prompt_len: int
    completion_len: int


def plan_micro_batches(
    rows: Tensor, prompt_len: Tensor, completion_len: Tensor, max_rows: int,
    *, call_cost: int | None = None,
) -> list[MicroBatch]:
    """Split ``rows`` into micro-batches of at most ``max_rows`` rows that minimise padding.

    Args:
        rows: ``(R,)`` indices of the rows to train.
        prompt_len, completion_len: ``(N,)`` real (unpadded) lengths of every rollout row.
        max_rows: the largest micro-batch (``algo.micro_batch``).
        call_cost: the cost of one more micro-batch, in padded positions
            (default :data:`CALL_COST_POSITIONS`).

    Returns micro-batches whose rows together are ``rows`` (reordered), in order of length.
    The cut is optimal for cost = Σ rows × (longest prompt + longest completion) + call_cost
    per micro-batch, over contiguous runs of the rows sorted by (completion, prompt) length.
    """
    if max_rows < 1:
        raise ValueError(f"max_rows must be >= 1, got {max_rows}")
    if rows.numel() == 0:
        return []
    if call_cost is None:
        call_cost = CALL_COST_POSITIONS
    pl = prompt_len[rows].cpu().numpy().astype(np.int64)
    cl = completion_len[rows].cpu().numpy().astype(np.int64)
    order = np.lexsort((pl, cl))  # by completion length, then prompt length
    pl, cl = pl[order], cl[order]
    r = len(order)
    best = np.zeros(r + 1, dtype=np.int64)
    cut = np.zeros(r + 1, dtype=np.int64)
    for end in range(1, r + 1):  # best[end]: rows [0, end) cut optimally; O(R · max_rows)
        lo = max(0, end - max_rows)
        starts = np.arange(lo, end)
        # longest prompt of rows [j, end) for every j; completions are sorted, so cl[end - 1]
        longest_prompt = np.maximum.accumulate(pl[lo:end][::-1])[::-1]
        cost = best[lo:end] + (end - starts) * (longest_prompt + cl[end - 1]) + call_cost
        j = int(np.argmin(cost))
        best[end], cut[end] = cost[j], lo + j
    bounds = []
    end = r
    while end > 0:
        bounds.append((int(cut[end]), end))
        end = int(cut[end])
    sorted_rows = rows[torch.from_numpy(order).to(rows.device)]
    return [MicroBatch(sorted_rows[a:b], prompt_len=int(pl[a:b].max()),
                       completion_len=max(1, int(cl[b - 1])))
            for a, b in reversed(bounds)]


def trim(x: Tensor, mb: MicroBatch, prompt_columns: int) -> Tensor:
    """``(r, prompt_len + T_c)``: the columns of the ``(N, Lp + T)`` prompt-and-completion
    tensor ``x`` (``Lp = prompt_columns``) that ``mb``'s rows need."""
    return x[mb.rows, prompt_columns - mb.prompt_len : prompt_columns + mb.completion_len]


def trim_completion(x: Tensor, mb: MicroBatch) -> Tensor:
    """``(r, T_c)`` of a ``(N, T)`` completion tensor, or ``(r,)`` of an ``(N,)`` one."""
    x = x[mb.rows]
    return x[:, : mb.completion_len] if x.dim() == 2 else x
