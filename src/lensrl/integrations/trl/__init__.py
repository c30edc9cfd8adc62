"""LENS inside TRL: ``LensGRPOConfig``, ``LensGRPOTrainer`` and ``accuracy_reward`` (``lensrl[trl]``).

Swapping ``GRPOConfig``/``GRPOTrainer`` for ``LensGRPOConfig``/``LensGRPOTrainer`` is the whole
change for a TRL user; the defaults are LENS with the paper's α = 0.25 and D ≥ 2·max π̄.
TRL has no advantage hook, so the trainer overrides two private methods (checked against TRL
1.16.0; the supported range is checked at import). The math is :func:`lensrl.core.compute_advantages`.

How TRL's options map onto ``lensrl.core`` (LensGRPOConfig rejects the rest with a ValueError):

- ``scale_rewards="group"`` (TRL's default) goes with the z-scoring estimators (``lens``, its
  ablations, ``grpo``), computed as TRL does it: unbiased std (``std_ddof=1``, TRL's ``nanstd``)
  and ε = 1e-4, so ``lens_estimator="grpo"`` reproduces ``GRPOTrainer``'s advantages.
- ``scale_rewards="none"`` goes with the estimators that do not divide by a std (``dr_grpo``,
  ``nsr``).
- ``scale_rewards="batch"`` (one std over the whole batch, PPO-Lite) is rejected: LENS
  normalises each mixed group by its own std and only de-means negative groups
  (docs/algorithm.md §6 facts 8-9); a batch std has no counterpart in ``lensrl.core``.
- ``multi_objective_aggregation`` must stay ``"sum_then_normalize"``: only the correctness
  reward shapes the advantage (LENS needs a binary verdict), the other reward functions are
  computed and logged by TRL as usual.

The package: ``config.py`` (LensGRPOConfig), ``trainer.py`` (LensGRPOTrainer),
``old_logprobs.py`` (the π_old recorder), ``reward.py`` (accuracy_reward), ``version.py`` (the
supported TRL range, checked here before anything imports TRL).
"""

from lensrl.integrations.trl.version import TRL_MAX, TRL_MIN, check_trl

check_trl()

from lensrl.integrations.trl.config import LensGRPOConfig  # noqa: E402
from lensrl.integrations.trl.reward import accuracy_reward  # noqa: E402
from lensrl.integrations.trl.trainer import LensGRPOTrainer  # noqa: E402

__all__ = ["TRL_MAX", "TRL_MIN", "LensGRPOConfig", "LensGRPOTrainer", "accuracy_reward",
           "check_trl"]
