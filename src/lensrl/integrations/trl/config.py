"""``LensGRPOConfig``: TRL's ``GRPOConfig`` plus the LENS options, checked against TRL's."""

from __future__ import annotations

from dataclasses import dataclass, field

from trl.trainer.grpo_config import GRPOConfig

from lensrl.core import (
    ESTIMATORS,
    LENS_ALPHA,
    LENS_D_FLOOR,
)

TRL_STD_EPS = 1e-4  # TRL's ε in (r − mean) / (std + ε); lensrl.core's default is verl's 1e-6


NEEDS_GROUP_SCALE = ("lens", "lens_mixed_only", "lens_negative_only", "grpo")



@dataclass
class LensGRPOConfig(GRPOConfig):
    r"""[`GRPOConfig`] plus the LENS options; every other field keeps TRL's meaning and default.

    The paper's recipe in TRL terms is in docs/integrations.md ("TRL").
    """

    lens_estimator: str = field(
        default="lens",
        metadata={
            "help": "Advantage estimator from `lensrl.core.compute_advantages`. `'lens'` (default): "
            "calibrated rewards, mixed groups z-scored, all-wrong groups de-meaned and weighted by "
            "`lens_alpha`, all-right groups 0. Also `'lens_mixed_only'`, `'lens_negative_only'` "
            "(Table 2 ablations) and `'grpo'` (these need `scale_rewards='group'`), and "
            "`'dr_grpo'`, `'nsr'` (these need `scale_rewards='none'`).",
            "choices": list(ESTIMATORS),
        },
    )
    lens_alpha: float = field(
        default=LENS_ALPHA,
        metadata={
            "help": "Weight α of all-wrong (negative) groups, folded into their advantages; the "
            "paper uses 0.25 for every model."
        },
    )
    lens_d_floor: float = field(
        default=LENS_D_FLOOR,
        metadata={
            "help": "Floor of the normaliser: D(q) >= lens_d_floor * max π̄ over the group; the "
            "paper uses 2, which keeps calibrated rewards in [-1/G, 0). Must be > 1."
        },
    )
    lens_correctness_reward: str | None = field(
        default=None,
        metadata={
            "help": "Name of the reward function (its `__name__`, as in TRL's `rewards/<name>` "
            "metrics) that returns correctness: 1.0, 0.0, or None when it cannot judge. Only "
            "this one shapes the advantage; other reward functions are only logged. `None`: "
            "the only reward function, or the one named `accuracy_reward`."
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()  # type: ignore[no-untyped-call]
        if self.lens_estimator not in ESTIMATORS:
            raise ValueError(
                f"lens_estimator must be one of {', '.join(ESTIMATORS)}; got {self.lens_estimator!r}"
            )
        if not self.lens_alpha >= 0:
            raise ValueError(f"lens_alpha must be >= 0, got {self.lens_alpha}")
        if not self.lens_d_floor > 1:
            raise ValueError(f"lens_d_floor must be > 1 so that D(q) > π̄, got {self.lens_d_floor}")
        needed = "group" if self.lens_estimator in NEEDS_GROUP_SCALE else "none"
        if self.scale_rewards != needed:
            raise ValueError(
                f"scale_rewards={self.scale_rewards!r} does not fit "
                f"lens_estimator={self.lens_estimator!r}: it needs scale_rewards={needed!r}. "
                "'batch' (one std over the batch) has no LENS counterpart: LENS z-scores each "
                "mixed group and only de-means negative groups (docs/algorithm.md §6 facts 8-9)."
            )
        if self.multi_objective_aggregation != "sum_then_normalize":
            raise ValueError(
                "multi_objective_aggregation must be 'sum_then_normalize' with LensGRPOConfig: "
                "the advantage comes from the correctness reward alone "
                f"(got {self.multi_objective_aggregation!r})"
            )
