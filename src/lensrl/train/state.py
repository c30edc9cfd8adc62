"""A training run's state: built from the config, checkpointed atomically, restored exactly.

:func:`build_state` makes the :class:`RunState` (model, optimizer, scheduler, data, RNGs,
verifier); :func:`save_state` writes it as ``checkpoints/step_<N>`` after a step;
:func:`restore_state` loads the newest checkpoint back for ``--resume``. For evaluation,
:func:`lensrl.policy.load_checkpoint` loads a checkpoint's model alone.

A checkpoint is written into a hidden temp folder and renamed to ``checkpoints/step_<N>`` only
when complete, so a run killed at any moment (even by SIGKILL) leaves either a whole checkpoint
or none; :func:`lensrl.runs.checkpoint_dirs` ignores the temp folders.
"""

from __future__ import annotations

import copy
import logging
import os
import random
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from lensrl.data import ProblemSampler
from lensrl.policy import (
    as_master,
    autocast,
    build_tiny,
    load_pretrained,
    load_smollm2,
    parameter_count,
    select_dtype,
)
from lensrl.runs import (
    CONFIG_FILE,
    METRICS_FILE,
    SAMPLES_FILE,
    checkpoint_dirs,
    latest_checkpoint,
    make_readable,
    read_config,
    truncate_after_step,
    write_config,
)
from lensrl.train.config import (
    TINY_MODELS,
    ConfigError,
    ModelConfig,
    OptimConfig,
    TaskConfig,
    TrainConfig,
)

log = logging.getLogger("lensrl.train")


@dataclass
class RunState:
    """A training run in memory: the policy and its optimizer, the data position, every RNG,
    the verifier, and where and in what dtype it computes. :func:`build_state` makes it,
    :func:`save_state` checkpoints it, :func:`restore_state` loads a checkpoint back into it."""

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
    if cfg.name in TINY_MODELS:
        return build_tiny(cfg.name, ALPHABET, seed=seed)
    if cfg.name == "smollm2":
        return load_smollm2()
    return load_pretrained(cfg.name)


def load_tasks(cfg: TaskConfig) -> tuple[list[Any], list[Any]]:
    """(train problems, held-out problems), the same split ``lensrl eval`` rebuilds."""
    from lensrl.data import heldout_problems, train_problems

    task = asdict(cfg)
    return train_problems(task), heldout_problems(task)


def build_state(cfg: TrainConfig) -> RunState:
    """Everything a run needs before its first step, from ``cfg`` (seeded by ``run.seed``)."""
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

    return RunState(
        model=model, tokenizer=tokenizer, ref_model=ref_model, optimizer=optimizer,
        scheduler=scheduler, generator=torch.Generator(device=device).manual_seed(cfg.run.seed),
        py_random=random.Random(cfg.run.seed),
        sampler=ProblemSampler(train_problems, cfg.run.seed), eval_problems=held, prompt=prompt,
        verifier=VerifierPool(timeout=cfg.verify.timeout, strict=cfg.verify.strict_train),
        device=device, dtype=dtype,
    )


# --- the run folder at the start of a run ------------------------------------------------------

# skip_zero_advantage and share_prompt_prefix change no weight (only how the update runs), so
# a resume may toggle them; so may the number of steps and the checkpoint cadence.
RESUMABLE_CHANGES = {("run", "steps"), ("run", "progress"), ("run", "checkpoint_every"),
                     ("algo", "skip_zero_advantage"), ("algo", "share_prompt_prefix")}


def open_run_dir(cfg: TrainConfig, run_dir: Path, resume: bool) -> None:
    """Create the folder and write config.json. A new run refuses a folder that holds one; a
    resume refuses settings that differ from the saved config (outside RESUMABLE_CHANGES).
    A section or key the saved config lacks (written by an older lensrl) counts as its default."""
    config_path = run_dir / CONFIG_FILE
    if resume and config_path.is_file():
        saved = TrainConfig.from_dict(read_config(run_dir), source=str(config_path)).to_dict()
        new = cfg.to_dict()
        diff = [f"{sec}.{k}" for sec in new for k in new[sec]
                if (sec, k) not in RESUMABLE_CHANGES and saved[sec][k] != new[sec][k]]
        if diff:
            raise ConfigError(f"--resume: {run_dir} was trained with other settings: "
                              f"{', '.join(diff)} differ from {config_path}")
    elif not resume and (run_dir / METRICS_FILE).exists():
        raise ConfigError(f"{run_dir} already holds a run; pass --resume or pick another --run-dir")
    run_dir.mkdir(parents=True, exist_ok=True)
    write_config(run_dir, cfg.to_dict())


# --- checkpoints -----------------------------------------------------------------------------


def rng_state(generator: torch.Generator, py_random: random.Random) -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "sampler": generator.get_state(),
        "python": py_random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any], generator: torch.Generator, py_random: random.Random) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["sampler"])
    py_random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    run_dir: Path,
    step: int,
    *,
    model: Any,
    tokenizer: Any,
    trainer_state: dict[str, Any],
    ref_model: Any = None,
    keep: int = 2,
) -> Path:
    """Write ``checkpoints/step_<step>`` atomically and keep the newest ``keep`` of them."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no "Writing model shards" bar per checkpoint
    root = run_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step}"
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".tmp_step_{step}_"))
    try:
        model.save_pretrained(tmp / "model")
        tokenizer.save_pretrained(tmp / "model")
        if ref_model is not None:
            ref_model.save_pretrained(tmp / "ref")
        torch.save(trainer_state, tmp / "trainer_state.pt")
        make_readable(tmp)  # mkdtemp made it 0700: a colleague could not evaluate it
        if final.exists():  # re-running a step after a resume: replace it whole
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in sorted(checkpoint_dirs(run_dir))[:-keep]:
        shutil.rmtree(root / f"step_{old}", ignore_errors=True)
    return final


def load_trainer_state(path: Path) -> dict[str, Any]:
    state: dict[str, Any] = torch.load(path / "trainer_state.pt", weights_only=False)
    return state


def save_state(state: RunState, run_dir: Path, step: int, *, keep: int = 2) -> Path:
    """Checkpoint ``state`` after ``step``: the fp32 weights, the optimizer and scheduler, the
    sampler's and the global RNG states and the data position, enough for an exact resume."""
    trainer_state = {
        "step": step,
        "optimizer": state.optimizer.state_dict(),
        "scheduler": state.scheduler.state_dict(),
        "rng": rng_state(state.generator, state.py_random),
        "data": state.sampler.state_dict(),
    }
    return save_checkpoint(run_dir, step, model=state.model, tokenizer=state.tokenizer,
                           trainer_state=trainer_state, ref_model=state.ref_model, keep=keep)


def restore_state(state: RunState, run_dir: Path) -> int:
    """Load the newest checkpoint of ``run_dir`` into ``state`` and drop the log rows written after
    it; returns its step (0, with empty logs, when there is none)."""
    found = latest_checkpoint(run_dir)
    if found is None:
        log.warning("--resume: no checkpoint in %s, starting from step 0", run_dir)
        for name in (METRICS_FILE, SAMPLES_FILE):
            truncate_after_step(run_dir / name, -1)
        return 0
    step, path = found
    from safetensors.torch import load_file

    state.model.load_state_dict(load_file(path / "model" / "model.safetensors"), strict=False)
    if state.ref_model is not None:
        state.ref_model.load_state_dict(load_file(path / "ref" / "model.safetensors"), strict=False)
    saved = load_trainer_state(path)
    state.optimizer.load_state_dict(saved["optimizer"])
    state.scheduler.load_state_dict(saved["scheduler"])
    set_rng_state(saved["rng"], state.generator, state.py_random)
    state.sampler.load_state_dict(saved["data"])
    for name in (METRICS_FILE, SAMPLES_FILE):
        truncate_after_step(run_dir / name, step)
    log.info("resumed %s from step %d", run_dir, step)
    return step


# Old names (0.1), kept for lensrl.train.state / lensrl.train.state imports.
Setup = RunState
build_setup = build_state
save_run_state = save_state
restore_run_state = restore_state
