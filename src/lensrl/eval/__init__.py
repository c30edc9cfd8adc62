"""Evaluation: unbiased pass@k, difficulty buckets, bootstrap CIs and paired comparison of runs.

Nothing here imports torch or the trainer at import time; :func:`evaluate` imports
``lensrl.rollout`` and ``lensrl.verify`` only when called without ``generate`` / ``verify``.
"""

from lensrl.eval.compare import compare_runs, format_table, load_methods, method_summary
from lensrl.eval.evaluate import (
    build_result,
    eval_steps,
    evaluate,
    read_eval,
    summary_metrics,
    write_eval,
)
from lensrl.eval.passk import DEFAULT_KS, bootstrap_mean_ci, bucket_masks, pass_at_k, summarize

__all__ = [
    "DEFAULT_KS",
    "bootstrap_mean_ci",
    "bucket_masks",
    "build_result",
    "compare_runs",
    "eval_steps",
    "evaluate",
    "format_table",
    "load_methods",
    "method_summary",
    "pass_at_k",
    "read_eval",
    "summarize",
    "summary_metrics",
    "write_eval",
]
