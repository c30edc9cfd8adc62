"""A micro study: a nano model, 2 arms x 2 seeds, 2 RL steps, 8 held-out problems x 4 samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from lensrl.study import StudyConfig, load_study


def micro_dict(root: Path) -> dict[str, Any]:
    return {
        "preset": "smoke",
        "out": str(root / "runs"),
        "results": str(root / "results"),
        "warmup": {"size": "nano", "steps": 4, "batch_size": 16},
        # levels 4-5 present, so the levels_4-5 endpoint exists
        "train": {"task": {"levels": [1, 2, 4, 5]},
                  "run": {"steps": 2, "checkpoint_every": 1, "log_samples": 4}},
        "eval": {"problems": 8, "samples": 4, "batch_prompts": 8},
        "pilot": {"arms": ["grpo", "lens"], "seeds": 1},
        "arms": {"grpo": {"estimator": "grpo", "seeds": 2},
                 "lens": {"estimator": "lens", "alpha": 0.25, "seeds": 2}},
        "stats": {"baseline": "grpo", "primary_arm": "lens", "endpoints": ["all:4", "levels_4-5:2"],
                  "alpha_sweep": ["lens"], "resamples": 200, "permutations": 200},
    }


def write_config(root: Path, data: dict[str, Any]) -> Path:
    path = root / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def micro_config(tmp_path: Path) -> StudyConfig:
    return load_study(write_config(tmp_path, micro_dict(tmp_path)))
