"""Supervised warm-up (``lensrl sft``): bring a from-scratch tiny model to a useful start.

RL from a random model learns nothing (every group is all wrong and, for GRPO, silent), so
the demo first teaches the answer format and the easy levels by next-token prediction on
``prompt + \\boxed{answer} + EOS``, with the loss on the completion tokens only.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from lensrl.cli import one_line
from lensrl.policy import TINY_PRESETS, build_tiny, parameter_count
from lensrl.train.config import DTYPES, ConfigError, check
from lensrl.train.precision import as_master, autocast, select_dtype

log = logging.getLogger("lensrl.train.sft")


@dataclass
class SFTConfig:
    """Fields: model ``size`` preset; ``steps`` and/or ``max_seconds`` (whichever ends first);
    ``batch_size`` problems per step; ``lr`` peak AdamW rate (cosine decay to 10%);
    ``levels``/``train_problems``/``task_seed`` as in TaskConfig; ``template`` (None = the
    built-in task's short template); ``seed``; ``dtype`` the compute dtype as in
    ``model.dtype`` (the weights and AdamW state stay float32 either way)."""

    size: str = "tiny"
    steps: int = 400
    max_seconds: float = 0.0
    batch_size: int = 128
    lr: float = 3e-3
    levels: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5])
    train_problems: int = 20000
    task_seed: int = 0
    template: str | None = None
    seed: int = 0
    dtype: str = "auto"

    def __post_init__(self) -> None:
        check(self.steps >= 1, "sft.steps", self.steps, ">= 1")
        check(self.max_seconds >= 0, "sft.max_seconds", self.max_seconds, ">= 0 (0 = no limit)")
        check(self.batch_size >= 1, "sft.batch_size", self.batch_size, ">= 1")
        check(self.lr > 0, "sft.lr", self.lr, "> 0")
        check(bool(self.levels) and all(1 <= lv <= 5 for lv in self.levels), "sft.levels",
               self.levels, "a non-empty list of levels 1-5")
        check(self.dtype in DTYPES, "sft.dtype", self.dtype,
               "auto, float32 or bfloat16")


def _batch(tokenizer: Any, prompts: list[str], targets: list[str]) -> tuple[torch.Tensor, ...]:
    """Right-padded ids, attention mask and labels (-100 outside the completion)."""
    rows, labels = [], []
    for p, t in zip(prompts, targets):
        pi = tokenizer(p, add_special_tokens=False)["input_ids"]
        ti = tokenizer(t, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        rows.append(pi + ti)
        labels.append([-100] * len(pi) + ti)
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    lab = torch.tensor([r + [-100] * (width - len(r)) for r in labels])
    mask = (torch.arange(width)[None, :] < torch.tensor([len(r) for r in rows])[:, None]).long()
    return ids, mask, lab


def sft(cfg: SFTConfig, out: Path) -> dict[str, Any]:
    """Train and save a model folder at ``out``; returns a summary (also out/sft.json)."""
    from lensrl.data import ALPHABET, BUILTIN_TEMPLATE, builtin_problems, format_prompt

    template = cfg.template or BUILTIN_TEMPLATE  # the tiny model's short prompt

    torch.manual_seed(cfg.seed)
    model, tokenizer = build_tiny(cfg.size, ALPHABET, seed=cfg.seed)
    device = torch.device("cpu")
    dtype, reason = select_dtype(cfg.dtype, device)
    model = as_master(model)  # fp32 masters; bf16 only inside autocast
    problems = builtin_problems("train", cfg.train_problems, seed=cfg.task_seed,
                                levels=tuple(cfg.levels))
    log.info("sft: %.2fM parameters, %s, %d problems", parameter_count(model) / 1e6, reason,
             len(problems))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.1 + 0.9 * 0.5 * (1 + torch.cos(torch.tensor(torch.pi * s / cfg.steps))).item()
    )
    rng = random.Random(cfg.seed)
    start = time.perf_counter()
    model.train()
    losses: list[float] = []
    step = 0
    for step in range(1, cfg.steps + 1):
        picked = rng.sample(problems, min(cfg.batch_size, len(problems)))
        prompts = [format_prompt(p, tokenizer, template=template) for p in picked]
        ids, mask, labels = _batch(tokenizer, prompts, [f"\\boxed{{{p.answer}}}" for p in picked])
        with autocast(device, dtype):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if step % 50 == 0:
            log.info("sft step %d loss %.4f", step, sum(losses[-50:]) / len(losses[-50:]))
        if cfg.max_seconds and time.perf_counter() - start > cfg.max_seconds:
            break
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    summary = {"config": asdict(cfg), "steps": step, "seconds": time.perf_counter() - start,
               "final_loss": sum(losses[-20:]) / max(len(losses[-20:]), 1)}
    (out / "sft.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def configure_parser(p: argparse.ArgumentParser) -> None:
    from lensrl.cli import non_negative_int, positive_float, positive_int

    p.add_argument("--out", type=Path, required=True, help="model folder to write")
    p.add_argument("--size", default="tiny", choices=list(TINY_PRESETS), help="tiny model preset")
    p.add_argument("--steps", type=positive_int, default=SFTConfig.steps,
                   help="optimizer steps (one batch each)")
    p.add_argument("--seconds", type=float, default=0.0, help="stop after this long (0 = no limit)")
    p.add_argument("--batch-size", type=positive_int, default=SFTConfig.batch_size,
                   help="problems per step")
    p.add_argument("--lr", type=positive_float, default=SFTConfig.lr,
                   help="peak learning rate of AdamW")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="seed of the model's initial weights and of the batches")
    p.add_argument("--dtype", default="auto", choices=DTYPES,
                   help="compute dtype; weights stay float32")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        cfg = SFTConfig(size=args.size, steps=args.steps, max_seconds=args.seconds,
                        batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                        dtype=args.dtype)
        summary = sft(cfg, args.out)
    except (ConfigError, ValueError) as exc:
        print(f"lensrl sft: error: {one_line(exc)}", file=sys.stderr)
        return 2
    print(f"sft: {summary['steps']} steps in {summary['seconds']:.0f} s, "
          f"loss {summary['final_loss']:.4f} -> {args.out}")
    return 0
