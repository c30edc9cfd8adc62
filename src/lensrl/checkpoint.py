"""Atomic checkpoints: model, optimizer, scheduler, every RNG state, data position, step.

The one home of a run's checkpoint: :func:`save_run_state` builds the state of a training
run and writes it, :func:`restore_run_state` loads the newest back into the run (``--resume``),
:func:`lensrl.policy.load_checkpoint` loads a checkpoint's model for evaluation.

A checkpoint is written into a hidden temp folder and renamed to ``checkpoints/step_<N>`` only
when complete, so a run killed at any moment (even by SIGKILL) leaves either a whole
checkpoint or none; ``policy.checkpoint_dirs`` ignores the temp folders.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from lensrl.policy import checkpoint_dirs
from lensrl.runlog import truncate_after_step

if TYPE_CHECKING:
    from lensrl.setup import Setup

log = logging.getLogger("lensrl.train")


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
        if final.exists():  # re-running a step after a resume: replace it whole
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in sorted(checkpoint_dirs(run_dir))[:-keep]:
        shutil.rmtree(root / f"step_{old}", ignore_errors=True)
    return final


def latest_checkpoint(run_dir: Path) -> tuple[int, Path] | None:
    found = checkpoint_dirs(run_dir)
    if not found:
        return None
    step = max(found)
    return step, found[step]


def load_trainer_state(path: Path) -> dict[str, Any]:
    state: dict[str, Any] = torch.load(path / "trainer_state.pt", weights_only=False)
    return state


def save_run_state(s: Setup, run_dir: Path, step: int, *, keep: int = 2) -> Path:
    """Checkpoint run ``s`` after ``step``: the fp32 weights, the optimizer and scheduler, the
    sampler's and the global RNG states and the data position, enough for an exact resume."""
    state = {
        "step": step,
        "optimizer": s.optimizer.state_dict(),
        "scheduler": s.scheduler.state_dict(),
        "rng": rng_state(s.generator, s.py_random),
        "data": s.sampler.state_dict(),
    }
    return save_checkpoint(run_dir, step, model=s.model, tokenizer=s.tokenizer,
                           trainer_state=state, ref_model=s.ref_model, keep=keep)


def restore_run_state(s: Setup, run_dir: Path) -> int:
    """Load the newest checkpoint of ``run_dir`` into ``s`` and drop the log rows written after
    it; returns its step (0, with empty logs, when there is none)."""
    found = latest_checkpoint(run_dir)
    if found is None:
        log.warning("--resume: no checkpoint in %s, starting from step 0", run_dir)
        for name in ("metrics.jsonl", "samples.jsonl"):
            truncate_after_step(run_dir / name, -1)
        return 0
    step, path = found
    from safetensors.torch import load_file

    s.model.load_state_dict(load_file(path / "model" / "model.safetensors"), strict=False)
    if s.ref_model is not None:
        s.ref_model.load_state_dict(load_file(path / "ref" / "model.safetensors"), strict=False)
    state = load_trainer_state(path)
    s.optimizer.load_state_dict(state["optimizer"])
    s.scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"], s.generator, s.py_random)
    s.sampler.load_state_dict(state["data"])
    for name in ("metrics.jsonl", "samples.jsonl"):
        truncate_after_step(run_dir / name, step)
    log.info("resumed %s from step %d", run_dir, step)
    return step
