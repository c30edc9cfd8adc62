"""What the verl bridge (:mod:`lensrl.integrations.verl`) and the ``lens_sync`` trainer
(:mod:`lensrl.integrations.verl_trainer`) share: the estimator names, their hyperparameters, and
the per-step channel between the trainer and the wrapped ``compute_advantage``. Imports no verl,
so that the two modules import it rather than each other."""

from __future__ import annotations

import contextvars

import numpy as np

from lensrl.core import LENS_ALPHA, LENS_D_FLOOR

# verl name -> lensrl.core estimator.
VERL_ESTIMATORS: dict[str, str] = {
    "lens": "lens",
    "lens_mixed_only": "lens_mixed_only",
    "lens_negative_only": "lens_negative_only",
    "lensrl_grpo": "grpo",
    "lensrl_dr_grpo": "dr_grpo",
    "lensrl_nsr": "nsr",
}
# Hyperparameters read from ``algorithm`` (Hydra: ``+algorithm.lens_alpha=0.25``), with defaults.
HPARAMS: dict[str, float] = {
    "lens_alpha": LENS_ALPHA,
    "lens_d_floor": LENS_D_FLOOR,
    "lens_std_ddof": 1,
    "lens_eps": 1e-6,
}

# Set by the lens_sync trainer around verl's _compute_advantage; read by the wrapper.
JUDGED: contextvars.ContextVar[np.ndarray | None] = contextvars.ContextVar("judged", default=None)
LAST_METRICS: dict[str, float] = {}
