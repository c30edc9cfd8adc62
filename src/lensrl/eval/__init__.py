"""Evaluation: a checkpoint to an eval file (unbiased pass@k by difficulty bucket, with
bootstrap CIs over problems) and the ``lensrl eval`` command. Comparing runs is
:mod:`lensrl.compare`'s.

Nothing here imports torch or the trainer at import time; :func:`evaluate` imports
``lensrl.rollout`` and ``lensrl.verify`` only when called without ``generate`` / ``verify``.
The eval file's path and its write/read rules are :mod:`lensrl.runs`'s, re-exported here.
"""

from lensrl.compare.stats import bootstrap_mean_ci
from lensrl.eval.evaluate import build_result, evaluate, summary_metrics
from lensrl.eval.passk import DEFAULT_KS, bucket_masks, pass_at_k, summarize
from lensrl.runs import eval_steps, read_eval, write_eval

__all__ = [
    "DEFAULT_KS",
    "bootstrap_mean_ci",
    "build_result",
    "bucket_masks",
    "eval_steps",
    "evaluate",
    "pass_at_k",
    "read_eval",
    "summarize",
    "summary_metrics",
    "write_eval",
]
