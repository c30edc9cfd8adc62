"""The adapter loads into an unmodified verl through VERL_USE_EXTERNAL_MODULES, as Ray workers do."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = """
import verl  # imports the modules named in VERL_USE_EXTERNAL_MODULES, nothing else of ours
from verl.trainer.ppo import core_algos, ray_trainer
from verl.trainer.ppo.v1 import get_trainer_cls, utils
names = ("lens", "lens_mixed_only", "lens_negative_only", "lensrl_grpo", "lensrl_dr_grpo", "lensrl_nsr")
assert all(n in core_algos.ADV_ESTIMATOR_REGISTRY for n in names)
assert ray_trainer.compute_advantage.__lensrl_bridge__
assert utils.compute_advantage is ray_trainer.compute_advantage
assert get_trainer_cls("lens_sync").__name__ == "LensPPOTrainerSync"
print("bridged")
"""


def test_external_module_loading_registers_everything() -> None:
    env = {
        **os.environ,
        "VERL_USE_EXTERNAL_MODULES": "lensrl.integrations.verl",
        "PYTHONWARNINGS": "ignore",
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "bridged" in result.stdout
