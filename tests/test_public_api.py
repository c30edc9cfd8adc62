"""The public API is small and pinned: change it on purpose only."""

from __future__ import annotations

import lensrl
import lensrl.core

LENSRL_ALL = [
    "ESTIMATORS",
    "__version__",
    "compute_advantages",
    "group_diagnostics",
    "policy_loss",
    "sequence_confidence",
]

CORE_ALL = [
    "AGGREGATIONS",
    "ESTIMATORS",
    "GroupStats",
    "GroupTypes",
    "LENS_ALPHA",
    "LENS_D_FLOOR",
    "aggregate",
    "compute_advantages",
    "group_diagnostics",
    "group_stats",
    "group_types",
    "masked_mean",
    "policy_loss",
    "sequence_confidence",
    "sequence_mean_logprob",
]


def test_lensrl_all_is_pinned_and_sorted() -> None:
    assert lensrl.__all__ == LENSRL_ALL
    assert lensrl.__all__ == sorted(lensrl.__all__)
    for name in lensrl.__all__:
        assert hasattr(lensrl, name), name


def test_core_all_is_pinned_and_sorted() -> None:
    assert lensrl.core.__all__ == CORE_ALL
    assert lensrl.core.__all__ == sorted(lensrl.core.__all__)
    for name in lensrl.core.__all__:
        assert hasattr(lensrl.core, name), name


def test_top_level_names_are_the_core_objects() -> None:
    for name in LENSRL_ALL:
        if name != "__version__":
            assert getattr(lensrl, name) is getattr(lensrl.core, name)
    assert isinstance(lensrl.__version__, str)


def test_estimators_and_aggregations() -> None:
    assert lensrl.ESTIMATORS == (
        "grpo",
        "dr_grpo",
        "lens",
        "lens_mixed_only",
        "lens_negative_only",
        "nsr",
    )
    assert lensrl.core.AGGREGATIONS == (
        "seq_mean_token_mean",
        "token_mean",
        "seq_mean_token_sum_norm",
    )
