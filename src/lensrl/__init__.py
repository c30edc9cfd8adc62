"""lensrl: the reference implementation of LENS (arXiv:2510.08696).

The public API is small and pinned by ``tests/test_public_api.py``. The math lives in
:mod:`lensrl.core`; everything else calls it.
"""

from lensrl.core import (
    ESTIMATORS,
    compute_advantages,
    group_diagnostics,
    policy_loss,
    sequence_confidence,
)

__version__ = "0.1.0"

__all__ = [
    "ESTIMATORS",
    "__version__",
    "compute_advantages",
    "group_diagnostics",
    "policy_loss",
    "sequence_confidence",
]
