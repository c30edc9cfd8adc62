"""The LENS math as pure torch functions: no models, no configs, no I/O.

Imports only torch and the standard library (``tests/core/test_imports.py`` checks). Every other
part of lensrl — our trainer, the TRL and verl adapters — calls these functions.

Vocabulary for shapes: ``P`` prompts, ``G`` samples per prompt, ``N = P·G`` sequences in
consecutive groups, ``T`` completion tokens, ``V`` vocabulary.
"""

from lensrl.core.advantages import (
    ESTIMATORS,
    LENS_ALPHA,
    LENS_D_FLOOR,
    GroupStats,
    GroupTypes,
    compute_advantages,
    group_stats,
    group_types,
)
from lensrl.core.confidence import masked_mean, sequence_confidence, sequence_mean_logprob
from lensrl.core.diagnostics import group_diagnostics
from lensrl.core.loss import AGGREGATIONS, aggregate, policy_loss

__all__ = [
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
