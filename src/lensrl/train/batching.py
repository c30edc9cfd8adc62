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
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lensrl.policy import position_ids, target_logprobs, token_logprobs

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
        max_rows: the largest micro-batch (``batch.rows_per_micro_batch``).
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


# Model types whose forward accepts a DynamicCache built from tensors and differentiates through
# it (tests/trainer/test_batching.py checks the gradients on Llama).
PREFIX_MODEL_TYPES = ("llama",)


def can_share_prefix(model: Any) -> bool:
    return getattr(getattr(model, "config", None), "model_type", None) in PREFIX_MODEL_TYPES


class SharedPrefix:
    """The prompts of one update run through the model once, not once per sample.

    The G samples of a prompt share its tokens, and a causal model's activations on them do
    not depend on what follows, so the prompt (all but its last token) is run once per prompt
    with gradient, and each micro-batch attends to its rows' prompt keys and values as a KV
    cache. The gradient through the shared keys and values is the sum of the rows' gradients,
    which is what running every row in full gives. Micro-batches backpropagate into detached
    copies of the prompt cache; :meth:`backward` then sends the summed gradient through the
    prompt forward once.

    Shapes: ``g`` prompts, ``Lp`` prompt columns (left-padded), ``r`` rows of a micro-batch.
    """

    def __init__(self, model: Any, prompt_ids: Tensor, prompt_mask: Tensor, groups: Tensor
                 ) -> None:
        """``prompt_ids``, ``prompt_mask``: ``(g, Lp)``; ``groups``: ``(g,)`` sorted group ids
        (row // G) of those prompts."""
        from transformers import DynamicCache

        self.model, self.groups = model, groups
        mask = prompt_mask[:, :-1]
        cache = DynamicCache()
        model(input_ids=prompt_ids[:, :-1], attention_mask=mask, position_ids=position_ids(mask),
              past_key_values=cache, use_cache=True, logits_to_keep=1)
        self.kv = [t for layer in cache.layers for t in (layer.keys, layer.values)]
        self.leaves = [t.detach().requires_grad_() for t in self.kv]

    def logprobs(self, mb: MicroBatch, ids: Tensor, mask: Tensor, group_size: int,
                 temperature: float = 1.0) -> Tensor:
        """``(r, T_c)`` log-probs of ``mb``'s completions, like ``token_logprobs`` on the
        trimmed ``(r, prompt_len + T_c)`` ``ids``/``mask`` (see :func:`trim`)."""
        from transformers import DynamicCache

        prefix = mb.prompt_len - 1  # prompt columns taken from the cache
        if prefix == 0:  # one-token prompts: nothing to share
            return token_logprobs(self.model, ids, mask, mb.completion_len,
                                  temperature=temperature)
        index = torch.searchsorted(self.groups, mb.rows.to(self.groups.device) // group_size)
        kv = [t.index_select(0, index)[:, :, t.shape[2] - prefix :] for t in self.leaves]
        cache = DynamicCache(ddp_cache_data=list(zip(kv[::2], kv[1::2])))
        logits = self.model(
            input_ids=ids[:, prefix:], attention_mask=mask,
            position_ids=position_ids(mask)[:, prefix:], past_key_values=cache, use_cache=True,
        ).logits[:, :-1]  # (r, T_c, V): the last prompt token predicts the first
        return target_logprobs(logits, ids[:, -mb.completion_len :], temperature)

    def backward(self) -> None:
        """Send the micro-batches' gradients on the prompt cache through the prompt forward."""
        # a frozen layer's keys or values (LoRA: k_proj of layer 0 not adapted) have no graph
        pairs = [(t, leaf.grad) for t, leaf in zip(self.kv, self.leaves)
                 if leaf.grad is not None and t.requires_grad]
        if pairs:
            torch.autograd.backward([t for t, _ in pairs], [g for _, g in pairs])
