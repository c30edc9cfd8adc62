"""Everything a run needs before its first step: model, optimizer, data, RNG, verifier."""

from __future__ import annotations

import copy
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from lensrl.config import ModelConfig, OptimConfig, TaskConfig, TrainConfig
from lensrl.policy import (
    as_master,
    autocast,
    build_tiny,
    load_pretrained,
    load_smollm2,
    parameter_count,
    select_dtype,
)

log = logging.getLogger("lensrl.train")


class ProblemSampler:
    """Deterministic epochs over the training problems; its state is the data position."""

    def __init__(self, problems: list[Any], seed: int) -> None:
        if not problems:
            raise ValueError("no training problems")
        self.problems = problems
        self.seed = seed
        self.epoch = 0
        self.index = 0
        self._order = self._permutation()

    def _permutation(self) -> list[int]:
        order = list(range(len(self.problems)))
        random.Random(self.seed * 1_000_003 + self.epoch).shuffle(order)
        return order

    def take(self, k: int) -> list[Any]:
        out = []
        for _ in range(k):
            if self.index == len(self._order):
                self.epoch, self.index = self.epoch + 1, 0
                self._order = self._permutation()
            out.append(self.problems[self._order[self.index]])
            self.index += 1
        return out

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "index": self.index}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.index = state["epoch"], state["index"]
        self._order = self._permutation()


@dataclass
class Setup:
    model: Any
    tokenizer: Any
    ref_model: Any
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    generator: torch.Generator
    py_random: random.Random
    sampler: ProblemSampler
    eval_problems: list[Any]
    prompt: Callable[[Any], str]
    verifier: Any
    device: torch.device
    dtype: torch.dtype  # what forward passes compute in; the weights stay float32

    def autocast(self) -> Any:
        """The context every forward pass of the run (rollout, π_old, update, eval) runs in."""
        return autocast(self.device, self.dtype)


def make_optimizer(model: Any, cfg: OptimConfig) -> torch.optim.Optimizer:
    """AdamW over the model's parameters; the fused kernel (one pass over each tensor, as
    Hugging Face's Trainer defaults to) where torch has it for the parameters' device."""
    device = next(model.parameters()).device.type
    return torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(cfg.betas[0], cfg.betas[1]),
                             weight_decay=cfg.weight_decay, fused=device in ("cpu", "cuda"))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("model.device = 'cuda' but no CUDA device is available")
    return torch.device(name)


def load_model(cfg: ModelConfig, seed: int) -> tuple[Any, Any]:
    """The policy named by ``cfg`` (see ModelConfig.name)."""
    from lensrl.data import ALPHABET

    if cfg.init_from:
        return load_pretrained(cfg.init_from)
    if cfg.name == "tiny":
        return build_tiny(cfg.size, ALPHABET, seed=seed)
    if cfg.name == "smollm2":
        return load_smollm2()
    return load_pretrained(cfg.name)


def load_tasks(cfg: TaskConfig) -> tuple[list[Any], list[Any]]:
    """(train problems, held-out problems)."""
    from lensrl.data import builtin_problems, load_problems

    levels = tuple(cfg.levels)
    if cfg.dataset == "builtin":
        train = builtin_problems("train", cfg.train_problems, seed=cfg.seed, levels=levels)
        held = builtin_problems("test", cfg.eval_problems, seed=cfg.seed, levels=levels)
        return train, held
    train = load_problems(cfg.dataset)
    held = load_problems(cfg.eval_dataset)[: cfg.eval_problems] if cfg.eval_dataset else []
    return train, held


def build_setup(cfg: TrainConfig) -> Setup:
    from lensrl.data import format_prompt
    from lensrl.verify import VerifierPool

    torch.manual_seed(cfg.run.seed)
    device = resolve_device(cfg.model.device)
    dtype, reason = select_dtype(cfg.model.dtype, device)
    model, tokenizer = load_model(cfg.model, cfg.run.seed)
    model = as_master(model).to(device=device)  # fp32 masters; bf16 only under autocast
    log.info("policy: %s, %.2fM parameters, %s, %s", cfg.model.name,
             parameter_count(model) / 1e6, device, reason)
    ref_model = None
    if cfg.algo.kl_coef > 0:
        ref_model = copy.deepcopy(model).eval().requires_grad_(False)
    optimizer = make_optimizer(model, cfg.optim)
    warmup = cfg.optim.warmup_updates
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda u: min(1.0, (u + 1) / warmup) if warmup else 1.0
    )
    train_problems, held = load_tasks(cfg.task)
    template = cfg.task.template

    def prompt(problem: Any) -> str:
        return str(format_prompt(problem, tokenizer, template=template))

    return Setup(
        model=model, tokenizer=tokenizer, ref_model=ref_model, optimizer=optimizer,
        scheduler=scheduler, generator=torch.Generator(device=device).manual_seed(cfg.run.seed),
        py_random=random.Random(cfg.run.seed),
        sampler=ProblemSampler(train_problems, cfg.run.seed), eval_problems=held, prompt=prompt,
        verifier=VerifierPool(timeout=cfg.verify.timeout, strict=cfg.verify.strict_train),
        device=device, dtype=dtype,
    )
