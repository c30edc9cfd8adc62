"""The run folder, written and read in one place: the only interface between
training, evaluation, the study and the report.

A run folder holds:
* ``config.json``: the resolved TrainConfig (:func:`read_config`, :func:`run_info`);
* ``metrics.jsonl`` and ``samples.jsonl``: one JSON object a line, each with its ``step``
  (:class:`RunLog` appends, :func:`read_jsonl`/:func:`read_metrics` read). Undefined values
  (NaN, inf) are written as ``null`` and read back as NaN;
* ``checkpoints/step_<N>/`` (:func:`checkpoint_dirs`), written atomically by lensrl.train.state,
  each with a ``manifest.json`` of its files' sizes and sha256 (:func:`write_manifest`,
  :func:`check_manifest`);
* ``eval/<step>.json`` and named ``eval/<step>.<name>.json`` (:func:`write_eval`,
  :func:`read_eval`; the content is lensrl.eval.evaluate's);
* ``.lock``: held by the training process (:class:`RunLock`, the one lock of run folders).

One rule for JSONL everywhere: blank lines are skipped, a torn LAST line (a run killed or still
writing) is dropped, any other bad line is an error naming the file and line.

No torch and nothing of training: a notebook that compares finished runs pays for neither.
"""


from __future__ import annotations

from lensrl.runs.checkpoints import (
    check_manifest,
    checkpoint_dirs,
    file_sha256,
    latest_checkpoint,
    write_manifest,
)
from lensrl.runs.evals import (
    EvalExistsError,
    check_eval_target,
    eval_path,
    eval_settings,
    eval_steps,
    read_eval,
    write_eval,
)
from lensrl.runs.folder import (
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    EVAL_DIR,
    EVAL_LOCK,
    LOCK_NAME,
    MANIFEST_FILE,
    METRICS_FILE,
    SAMPLES_FILE,
    START_FILES,
    TRAIN_HINT,
    CheckpointError,
    RunInfo,
    RunLock,
    RunLockedError,
    RunLog,
    atomic_write_bytes,
    atomic_write_text,
    clean,
    make_readable,
    read_config,
    read_jsonl,
    read_metrics,
    remove_failed_start,
    run_info,
    series,
    truncate_after_step,
    write_config,
)

__all__ = [
    "CHECKPOINTS_DIR",
    "CONFIG_FILE",
    "CheckpointError",
    "EVAL_DIR",
    "EVAL_LOCK",
    "EvalExistsError",
    "LOCK_NAME",
    "MANIFEST_FILE",
    "METRICS_FILE",
    "RunInfo",
    "RunLock",
    "RunLockedError",
    "RunLog",
    "SAMPLES_FILE",
    "START_FILES",
    "TRAIN_HINT",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_eval_target",
    "check_manifest",
    "checkpoint_dirs",
    "clean",
    "eval_path",
    "eval_settings",
    "eval_steps",
    "file_sha256",
    "latest_checkpoint",
    "make_readable",
    "read_config",
    "read_eval",
    "read_jsonl",
    "read_metrics",
    "remove_failed_start",
    "run_info",
    "series",
    "truncate_after_step",
    "write_config",
    "write_eval",
    "write_manifest",
]
