"""Training: the typed config and presets, the trainer loop, the run state and its
checkpoints, micro-batching, the supervised warm-up, and ``lensrl train``.

    config.py   TrainConfig, one dataclass per section; presets/ the built-in YAML presets
    coerce.py   ConfigError, the range check, each raw value converted to its field's type
    migrate.py  0.1's config keys (files, --set, older runs' config.json) read as 0.2's
    precision.py the compute dtype: bf16 autocast over fp32 master weights, or fp32
    trainer.py  train(cfg): collect -> score -> update -> log -> checkpoint, in call order
    scored.py   the step's batch (Collected, ScoredBatch) and the rows the log reads from it
    state.py    RunState: build_state, save_state, restore_state, open_run_dir (resume rules)
    batching.py micro-batch planning and the shared-prompt forward (speed, proven exact)
    stop.py     Ctrl-C / SIGTERM: finish the step, checkpoint, TrainingInterrupted
    sft.py      lensrl sft, the supervised warm-up
    cli.py      lensrl train

Submodules are imported on use, so ``import lensrl.train`` costs no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = {"train": "lensrl.train.trainer", "TrainConfig": "lensrl.train.config",
          "TrainingInterrupted": "lensrl.train.stop"}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(importlib.import_module(_NAMES[name]), name)
    raise AttributeError(f"module 'lensrl.train' has no attribute {name!r}")
