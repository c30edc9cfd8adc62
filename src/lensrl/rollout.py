"""Rollout: G sampled completions per prompt, with the sampler's per-token log-probs.

A small sampling loop over the model's KV cache instead of ``generate``: it samples from the
full distribution (``generate`` applies ``top_k=50`` unless told otherwise; the paper samples
at temperature 1.0, top-p 1.0), it returns the log-prob of every sampled token, it draws from
an explicit ``torch.Generator`` so a resumed run replays the same samples, and it skips
``generate``'s per-step processor machinery, the main cost on small models (ENVIRONMENT.md).

Shapes: ``P`` prompts, ``G`` samples each, ``N = P·G`` rows (the G samples of a prompt are
consecutive), ``Lp`` prompt tokens (left-padded), ``T`` completion tokens (right-padded).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor


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
) -> Rollout:
    """Sample ``samples_per_prompt`` completions for each prompt; see :class:`Rollout`."""
    from transformers import DynamicCache

    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    device = next(model.parameters()).device
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    prompt_ids, prompt_mask = encode_prompts(tokenizer, prompts, device)
    prompt_ids = prompt_ids.repeat_interleave(samples_per_prompt, 0)  # (N, Lp)
    prompt_mask = prompt_mask.repeat_interleave(samples_per_prompt, 0)
    n = prompt_ids.shape[0]
    was_training = model.training
    model.eval()

    cache = DynamicCache()
    attention = prompt_mask
    positions = (attention.cumsum(-1) - 1).clamp(min=0)
    logits = model(
        input_ids=prompt_ids,
        attention_mask=attention,
        position_ids=positions,
        past_key_values=cache,
        use_cache=True,
    ).logits[:, -1]
    next_pos = positions[:, -1:] + 1  # (N, 1)
    tokens, logps = [], []
    done = torch.zeros(n, dtype=torch.bool, device=device)
    ones = torch.ones((n, 1), dtype=attention.dtype, device=device)
    for _ in range(max_new_tokens):
        logp = _sampling_logprobs(logits, temperature, top_p)
        tok = torch.multinomial(logp.exp(), 1, generator=generator)  # (N, 1)
        tok_lp = logp.gather(-1, tok).squeeze(-1)
        tok = tok.squeeze(-1).masked_fill(done, pad)
        tokens.append(tok)
        logps.append(tok_lp.masked_fill(done, 0.0))
        done = done | (tok == eos)
        if bool(done.all()):
            break
        attention = torch.cat([attention, ones], dim=1)
        logits = model(
            input_ids=tok[:, None],
            attention_mask=attention,
            position_ids=next_pos,
            past_key_values=cache,
            use_cache=True,
        ).logits[:, -1]
        next_pos = next_pos + 1
    if was_training:
        model.train()

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
