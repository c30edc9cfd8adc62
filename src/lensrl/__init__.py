"""lensrl: the reference implementation of LENS (arXiv:2510.08696).

The public API is small and pinned by ``tests/test_public_api.py``. The math lives in
:mod:`lensrl.core`; everything else calls it.

Names are resolved lazily, so ``import lensrl.verify`` (imported by the verifier's worker
processes) or ``import lensrl.data`` does not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

__all__ = [
    "ESTIMATORS",
    "__version__",
    "compute_advantages",
    "group_diagnostics",
    "policy_loss",
    "sequence_confidence",
]

_CORE = {"ESTIMATORS", "compute_advantages", "group_diagnostics", "policy_loss",
         "sequence_confidence"}


def __getattr__(name: str) -> Any:
    if name in _CORE:
        return getattr(importlib.import_module("lensrl.core"), name)
    raise AttributeError(f"module 'lensrl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _CORE)
