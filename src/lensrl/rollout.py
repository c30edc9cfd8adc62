"""Rollout: G sampled completions per prompt, with the sampler's per-token log-probs.

A small sampling loop over the model's KV cache instead of ``generate``: it samples from the
full distribution (``generate`` applies ``top_k=50`` unless told otherwise; the paper samples
at temperature 1.0, top-p 1.0), it returns the log-prob of every sampled token, it draws from
an explicit ``torch.Generator`` so a resumed run replays the same samples, and it skips
``generate``'s per-step processor machinery, the main cost on small models (docs/benchmarks.md).

Shapes: ``P`` prompts, ``G`` samples each, ``N = P·G`` rows (the G samples of a prompt are
consecutive), ``Lp`` prompt tokens (left-padded), ``T`` completion tokens (right-padded).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from lensrl.decode import make_decoder
from lensrl.policy import position_ids


@dataclass(frozen=True)
class Rollout:
    """Sampled completions of one batch.

    Fields:
        prompt_ids, prompt_mask: ``(N, Lp)`` left-padded prompt tokens, repeated G times.
        completion_ids: ``(N, T)`` sampled tokens, EOS included, right-padded with pad.
        completion_mask: ``(N, T)`` 1 on sampled tokens (EOS included), 0 on padding.
        sampler_logprobs: ``(N, T)`` log-prob of each sampled token under the distribution
            it was drawn from (after temperature and top-p); 0 on padding.
        truncated: ``(N,)`` bool, the row hit ``max_new_tokens`` without an EOS.
        texts: ``N`` decoded completions, special tokens removed.
    """

    prompt_ids: Tensor
    prompt_mask: Tensor
    completion_ids: Tensor
    completion_mask: Tensor
    sampler_logprobs: Tensor
    truncated: Tensor
    texts: list[str]

    @property
    def input_ids(self) -> Tensor:
        """``(N, Lp + T)`` prompt followed by completion."""
        return torch.cat([self.prompt_ids, self.completion_ids], dim=1)

    @property
    def attention_mask(self) -> Tensor:
        """``(N, Lp + T)``."""
        return torch.cat([self.prompt_mask, self.completion_mask], dim=1)

    def rows(self, index: Tensor) -> Rollout:
        """The rows ``index`` ``(n,)``, in that order."""
        return Rollout(
            self.prompt_ids[index], self.prompt_mask[index], self.completion_ids[index],
            self.completion_mask[index], self.sampler_logprobs[index], self.truncated[index],
            [self.texts[i] for i in index.tolist()],
        )

    def groups(self, keep: Tensor, group_size: int) -> Rollout:
        """The groups (consecutive ``group_size`` rows) where ``keep`` ``(P,)`` is set."""
        idx = torch.nonzero(keep).flatten()
        return self.rows((idx[:, None] * group_size + torch.arange(group_size,
                                                                   device=idx.device)).flatten())

    @staticmethod
    def concat(parts: list[Rollout], pad: int) -> Rollout:
        """Rollouts stacked: prompts left-padded, completions right-padded to common widths."""
        if len(parts) == 1:
            return parts[0]
        lp = max(p.prompt_ids.shape[1] for p in parts)
        tc = max(p.completion_ids.shape[1] for p in parts)

        def left(x: Tensor, width: int, value: float) -> Tensor:
            return torch.nn.functional.pad(x, (width - x.shape[1], 0), value=value)

        def right(x: Tensor, width: int, value: float) -> Tensor:
            return torch.nn.functional.pad(x, (0, width - x.shape[1]), value=value)

        return Rollout(
            torch.cat([left(p.prompt_ids, lp, pad) for p in parts]),
            torch.cat([left(p.prompt_mask, lp, 0) for p in parts]),
            torch.cat([right(p.completion_ids, tc, pad) for p in parts]),
            torch.cat([right(p.completion_mask, tc, 0) for p in parts]),
            torch.cat([right(p.sampler_logprobs, tc, 0.0) for p in parts]),
            torch.cat([p.truncated for p in parts]),
            [t for p in parts for t in p.texts],
        )


def encode_prompts(tokenizer: Any, prompts: list[str], device: torch.device) -> tuple[Tensor, Tensor]:
    """Left-padded ``(P, Lp)`` ids and mask. Templates already hold any special tokens."""
    rows = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    if any(len(r) == 0 for r in rows):
        raise ValueError("empty prompt after tokenisation")
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r) :] = torch.tensor(r)
        mask[i, width - len(r) :] = 1
    return ids.to(device), mask.to(device)


def _sampling_logprobs(logits: Tensor, temperature: float, top_p: float) -> Tensor:
    """``(N, V)`` log-probs of the distribution to sample from."""
    logp = (logits.float() / temperature).log_softmax(-1)
    if top_p < 1.0:
        sorted_lp, order = logp.sort(-1, descending=True)
        # keep the smallest prefix whose mass reaches top_p (the first token always stays)
        cum = sorted_lp.exp().cumsum(-1)
        drop_sorted = (cum - sorted_lp.exp()) >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logp = logp.masked_fill(drop, float("-inf")).log_softmax(-1)
    return logp


@torch.no_grad()
def generate(
    model: Any,
    tokenizer: Any,
    prompts: list[str],
    *,
    samples_per_prompt: int,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
    decoder: Callable[[Any], Any] | None = None,
) -> Rollout:
    """Sample ``samples_per_prompt`` completions for each prompt; see :class:`Rollout`.

    ``decoder``: builds the decoder from the model (default :func:`lensrl.decode.make_decoder`;
    :class:`lensrl.decode.HFDecoder` runs the model's own ``forward``, as benchmarks compare).

    Speed without changing what is sampled (docs/benchmarks.md):
    each prompt is prefilled once and its KV cache repeated G times; a Llama decodes with
    :class:`lensrl.decode.LlamaDecoder` (the model's own step without the per-layer module
    machinery); rows that emitted EOS are dropped from the cache and the batch (they would
    only sample padding); and the draw is still made over all N rows, so the generator's
    stream is the same as with no pruning.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    device = next(model.parameters()).device
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    ids, mask = encode_prompts(tokenizer, prompts, device)  # (P, Lp)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            tokens, logps = _sample_loop(
                (decoder or make_decoder)(model), ids, mask, samples_per_prompt,
                max_new_tokens, temperature, top_p, generator, eos, pad,
            )
    finally:
        if was_training:
            model.train()
    prompt_ids = ids.repeat_interleave(samples_per_prompt, 0)  # (N, Lp)
    prompt_mask = mask.repeat_interleave(samples_per_prompt, 0)
    # stacked outside inference_mode: ordinary tensors, which the loss may use with autograd
    completion_ids = torch.stack(tokens, 1)  # (N, T)
    sampler_logprobs = torch.stack(logps, 1)
    # A token belongs to the completion until and including the first EOS.
    is_eos = completion_ids == eos
    after_eos = (is_eos.long().cumsum(-1) - is_eos.long()) > 0
    completion_mask = (~after_eos).long()
    completion_ids = completion_ids.masked_fill(after_eos, pad)
    sampler_logprobs = sampler_logprobs.masked_fill(after_eos, 0.0)
    truncated = ~is_eos.any(-1)
    texts = tokenizer.batch_decode(
        [row[m.bool() & (row != eos)].tolist() for row, m in zip(completion_ids, completion_mask)],
        skip_special_tokens=True,
    )
    return Rollout(
        prompt_ids, prompt_mask, completion_ids, completion_mask, sampler_logprobs, truncated, texts
    )


# Drop finished rows from the cache once they are at least this share of the cached rows:
# each drop copies the cache, so a few finished rows ride along until enough have piled up.
PRUNE_FRACTION = 0.125


def _sample_loop(
    decoder: Any,
    ids: Tensor,
    mask: Tensor,
    G: int,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    generator: torch.Generator | None,
    eos: int,
    pad: int,
) -> tuple[list[Tensor], list[Tensor]]:
    """The decoding loop: per step, ``(N,)`` sampled tokens and their log-probs (pad / 0 once
    a row is done). ``ids``/``mask`` are the ``(P, Lp)`` prompts, each prefilled once."""
    n = ids.shape[0] * G
    positions = position_ids(mask)
    logits = decoder.prefill(ids, mask, positions, G).float()  # (N, V)
    attention = mask.repeat_interleave(G, 0)  # (n_live, Lp + t): rows still in the cache
    next_pos = positions[:, -1:].repeat_interleave(G, 0) + 1  # (n_live, 1)
    live = torch.arange(n, device=ids.device)  # (n_live,) row index of each cached row
    full = logits
    tokens: list[Tensor] = []
    logps: list[Tensor] = []
    done = torch.zeros(n, dtype=torch.bool, device=ids.device)
    for _ in range(max_new_tokens):
        logp = _sampling_logprobs(full, temperature, top_p)  # (N, V)
        tok = torch.multinomial(logp.exp(), 1, generator=generator)  # (N, 1)
        tok_lp = logp.gather(-1, tok).squeeze(-1)
        tok = tok.squeeze(-1).masked_fill(done, pad)
        tokens.append(tok)
        logps.append(tok_lp.masked_fill(done, 0.0))
        done = done | (tok == eos)
        if bool(done.all()):
            break
        finished = done[live]
        n_finished = int(finished.sum())
        if n_finished and n_finished >= PRUNE_FRACTION * live.numel():
            keep = torch.nonzero(~finished).squeeze(-1)
            decoder.select(keep)
            live, attention, next_pos = live[keep], attention[keep], next_pos[keep]
        attention = torch.cat([attention, attention.new_ones((live.numel(), 1))], dim=1)
        logits = decoder.step(tok[live], attention, next_pos).float()  # (n_live, V)
        next_pos = next_pos + 1
        if live.numel() == n:
            full = logits
        else:  # finished rows draw from a uniform placeholder, so the stream keeps its shape
            full = logits.new_zeros((n, logits.shape[-1])).index_copy_(0, live, logits)
    return tokens, logps


def sample_completions(
    model: Any,
    tokenizer: Any,
    prompts: list[str],
    *,
    n: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    max_new_tokens: int,
    seed: int = 0,
    max_rows: int = 1024,
) -> list[list[str]]:
    """``n`` completion texts per prompt, in chunks of at most ``max_rows`` sequences.

    Draws from its own seeded generator, so evaluation never disturbs a training run's RNG.
    """
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    per_chunk = max(1, max_rows // n)
    out: list[list[str]] = []
    for start in range(0, len(prompts), per_chunk):
        chunk = prompts[start : start + per_chunk]
        ro = generate(
            model,
            tokenizer,
            chunk,
            samples_per_prompt=n,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            generator=generator,
        )
        out.extend(ro.texts[i * n : (i + 1) * n] for i in range(len(chunk)))
    return out
