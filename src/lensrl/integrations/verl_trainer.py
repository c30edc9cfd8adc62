"""The ``lens_sync`` verl v1 trainer: verl's ``PPOTrainerSync`` plus LENS's step metrics.

Select it with ``trainer.v1.trainer_mode=lens_sync`` (it is registered when
:mod:`lensrl.integrations.verl` is imported and verl's v1 stack, TransferQueue, is installed).

It overrides one method, ``_compute_advantage(batch, metrics)``, and only for the lensrl
estimators:

1. reads the ``judged`` flag that :func:`lensrl.integrations.verl_reward.compute_score` returns
   (verl's reward loop keeps it in each trajectory's ``extra_fields["reward_extra_info"]``) from
   TransferQueue, so that "cannot judge" rows are left out of their group's statistics instead of
   counting as wrong; verl's base method does not fetch that field;
2. runs verl's own ``_compute_advantage``, whose ``compute_advantage`` call is the bridge;
3. adds the ``groups/*``, ``lens/*`` and ``verify/*`` diagnostics (docs/metrics.md) to the step's
   metrics, which a function called from inside that method cannot reach.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import transfer_queue as tq
from verl.trainer.ppo.v1.trainer_base import register_trainer
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

from lensrl.integrations.verl_state import JUDGED, LAST_METRICS, VERL_ESTIMATORS


def read_judged(batch: Any) -> np.ndarray | None:
    """``(B,)`` bool verdict flags in ``batch.keys`` order, or None if a row lacks one."""
    data = tq.kv_batch_get(
        keys=batch.keys, partition_id=batch.partition_id, select_fields=["extra_fields"]
    )
    flags = []
    for value in data["extra_fields"]:
        extra = getattr(value, "data", value)  # NonTensorData or a plain dict, by TQ backend
        info = extra.get("reward_extra_info", {}) if isinstance(extra, dict) else {}
        if "judged" not in info:
            return None
        flags.append(bool(info["judged"]))
    return np.array(flags, dtype=bool)


@register_trainer("lens_sync")
class LensPPOTrainerSync(PPOTrainerSync):  # type: ignore[misc]
    """``PPOTrainerSync`` that feeds verdict flags to the LENS estimators and logs their metrics."""

    def _compute_advantage(self, batch: Any, metrics: dict[str, Any]) -> Any:
        if self.config.algorithm.adv_estimator not in VERL_ESTIMATORS:
            return super()._compute_advantage(batch, metrics)
        token = JUDGED.set(read_judged(batch))
        LAST_METRICS.clear()
        try:
            batch = super()._compute_advantage(batch, metrics)
        finally:
            JUDGED.reset(token)
        metrics.update(LAST_METRICS)
        return batch
