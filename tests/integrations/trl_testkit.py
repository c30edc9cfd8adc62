"""Tiny offline models, tokenizer and data for the TRL adapter tests (no download)."""

from __future__ import annotations

import os
import string
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

import torch
from datasets import Dataset
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from lensrl.policy import SPECIAL_TOKENS, build_char_tokenizer

CHARS = string.digits + "+=? abcdefghij"


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """Character-level tokenizer: one token per character, plus the special tokens."""
    return build_char_tokenizer(CHARS)


def tiny_model(tokenizer: PreTrainedTokenizerFast, seed: int = 0, hidden: int = 32) -> Any:
    """A 2-layer Llama with hidden size ``hidden``, fp32, built from a config."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def tiny_dataset(n: int = 16) -> Dataset:
    """Addition prompts with an ``answer`` column; prompts all have the same length."""
    prompts = [f"{i % 10}+{(3 * i) % 10}=" for i in range(n)]
    answers = [str(i % 10 + (3 * i) % 10) for i in range(n)]
    return Dataset.from_dict({"prompt": prompts, "answer": answers})


def contains_one(completions: list[str], **kwargs: Any) -> list[float]:
    """A binary reward that the untrained model gets right sometimes: mixed and all-wrong groups."""
    return [1.0 if "1" in c else 0.0 for c in completions]


def always_zero(completions: list[str], **kwargs: Any) -> list[float]:
    """Every completion wrong: every group is all-wrong."""
    return [0.0 for _ in completions]


def length_bonus(completions: list[str], **kwargs: Any) -> list[float]:
    """A non-binary extra reward (like a format reward) that LENS must not use."""
    return [0.1 * len(c) for c in completions]


def config_kwargs(**overrides: Any) -> dict[str, Any]:
    """GRPOConfig kwargs for a fast CPU run: 16 completions in 4 groups per step."""
    kwargs: dict[str, Any] = dict(
        output_dir="unused",
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        report_to=[],
        per_device_train_batch_size=16,
        num_generations=4,
        max_completion_length=8,
        max_steps=1,
        learning_rate=1e-2,
        logging_steps=1,
        save_strategy="no",
        seed=0,
        disable_tqdm=True,
        dataloader_num_workers=0,
        # The untrained model must not sample pad / unk / bos, so that `!= pad` finds a
        # completion's tokens (build_char_tokenizer puts SPECIAL_TOKENS first, in order).
        generation_kwargs={"suppress_tokens": [SPECIAL_TOKENS.index(t)
                                               for t in ("<pad>", "<unk>", "<bos>")]},
    )
    kwargs.update(overrides)
    return kwargs


def reference_mean_logprob(
    model: Any, out: dict[str, Any], temperature: float = 1.0
) -> torch.Tensor:
    """Independent log π̄: a plain forward with full attention over each completion's real tokens.

    Real tokens are ``completion_ids != pad`` (the tokenizer's pad differs from its eos), so a
    truncated completion that TRL masked out is still scored over its tokens.
    """
    prompt_ids, completion_ids = out["prompt_ids"], out["completion_ids"]
    pad = model.config.pad_token_id
    mask = (completion_ids != pad).long()
    ids = torch.cat([prompt_ids, completion_ids], dim=1)
    attention = torch.cat([out["prompt_mask"], mask], dim=1)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=attention).logits.float()
    T = completion_ids.size(1)
    logits = logits[:, -T - 1 : -1] / temperature  # (B, T, V)
    token_lp = torch.log_softmax(logits, -1).gather(-1, completion_ids[..., None]).squeeze(-1)
    return (token_lp * mask).sum(-1) / mask.sum(-1).clamp(min=1)
