"""Writing the run folder: config.json, metrics.jsonl, samples.jsonl, TensorBoard events.

The run folder is the only interface between training, evaluation and plots (STYLE.md §11).
Undefined metric values (NaN, inf) are written as JSON ``null``.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

LOCK_NAME = ".lock"


class RunLockedError(RuntimeError):
    """Another process is training in this run folder."""


class RunLock:
    """An exclusive lock on a run folder, held by ``train`` for the whole run.

    ``fcntl.flock`` on ``<run_dir>/.lock``, which holds the owner's PID. The kernel drops the
    lock when its process dies, however it dies, so a ``kill -9`` never leaves a stale lock in
    the way of ``--resume``; the PID left in the file is only read to name the owner while the
    lock is held. Readers (``eval``, ``report``) take no lock. (The ``filelock`` package
    truncates the file when it tries to lock, which would erase the owner's PID.)
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunLockedError(
                f"{self.run_dir} is in use by another lensrl process (pid {owner}); wait for "
                "it to finish or stop it, then resume with --resume, or pick another --run-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file and a rename: never half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def clean(value: Any) -> Any:
    """JSON-safe copy: non-finite floats become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file; a torn last line (a run killed mid-write) is dropped."""
    if not path.is_file():
        return []
    rows = []
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break  # torn final write from a kill
            raise ValueError(f"{path}: line {i + 1} is not valid JSON") from None
    return rows


def truncate_after_step(path: Path, step: int) -> None:
    """Keep only rows with ``row["step"] <= step`` (resuming from a checkpoint at ``step``)."""
    if path.is_file():
        rows = [r for r in read_jsonl(path) if r.get("step", 0) <= step]
        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


class RunLog:
    """Appends metrics and samples to a run folder, and mirrors scalars to TensorBoard."""

    def __init__(self, run_dir: Path, *, tensorboard: bool = False) -> None:
        self.run_dir = run_dir
        self.metrics_path = run_dir / "metrics.jsonl"
        self.samples_path = run_dir / "samples.jsonl"
        self._tb: Any = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(run_dir / "tensorboard"))

    def _append(self, path: Path, rows: list[dict[str, Any]]) -> None:
        with path.open("a") as f:
            for row in rows:
                f.write(json.dumps(clean(row)) + "\n")
            f.flush()

    def metrics(self, step: int, values: dict[str, float]) -> None:
        self._append(self.metrics_path, [{"step": step, **values}])
        if self._tb is not None:
            for key, value in values.items():
                if isinstance(value, int | float) and math.isfinite(value):
                    self._tb.add_scalar(key, value, step)

    def samples(self, step: int, rows: list[dict[str, Any]]) -> None:
        if rows:
            self._append(self.samples_path, [{"step": step, **r} for r in rows])

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
