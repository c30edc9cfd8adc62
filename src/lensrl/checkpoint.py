"""Atomic checkpoints: model, optimizer, scheduler, every RNG state, data position, step.

A checkpoint is written into a hidden temp folder and renamed to ``checkpoints/step_<N>`` only
when complete, so a run killed at any moment (even by SIGKILL) leaves either a whole
checkpoint or none; ``policy.checkpoint_dirs`` ignores the temp folders.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from lensrl.policy import checkpoint_dirs


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
