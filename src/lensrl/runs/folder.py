"""The run folder's files: config, metrics and samples (one JSONL rule), atomic writes, the
folder lock, and who a run is (:class:`RunInfo`). See :mod:`lensrl.runs`."""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
SAMPLES_FILE = "samples.jsonl"
CHECKPOINTS_DIR = "checkpoints"
MANIFEST_FILE = "manifest.json"
LOCK_NAME = ".lock"
EVAL_DIR = "eval"
EVAL_LOCK = ".eval.lock"  # held for the check-and-write of an evaluation file



class RunLockedError(RuntimeError):
    """Another process holds the lock of this folder; ``pid`` is its PID as the lock file says
    (``"unknown"`` when it wrote none)."""

    def __init__(self, message: str, pid: str) -> None:
        super().__init__(message)
        self.pid = pid


class CheckpointError(RuntimeError):
    """A checkpoint is damaged, incomplete or refused; the message names the file and why."""


# What to do about a run folder another process trains in.
TRAIN_HINT = "wait for it to finish or stop it, then resume with --resume, or pick another --run-dir"


class RunLock:
    """An exclusive lock on a folder, held by ``train`` on its run folder for the whole run: the
    one lock of lensrl's folders.

    ``fcntl.flock`` on ``<folder>/<name>`` (``.lock`` by default), which holds the owner's PID.
    The kernel drops the lock when its process dies, however it dies, so a ``kill -9`` never
    leaves a stale lock in the way of ``--resume``; the PID left in the file is only read to name
    the owner while the lock is held. A refusal, :class:`RunLockedError`, names the folder, the
    owner's PID and ``hint`` (what to do). ``acquire(wait=True)`` waits for the lock instead.
    Another lock file ``name`` serves work that may run beside training in the same process or
    folder. (The ``filelock`` package truncates the file when it tries to lock, which would
    erase the owner's PID.)
    """

    def __init__(self, run_dir: Path, *, name: str = LOCK_NAME, hint: str = TRAIN_HINT) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / name
        self.hint = hint
        self._fd: int | None = None

    def acquire(self, *, wait: bool = False) -> RunLock:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            owner = self._owner(fd)
            os.close(fd)
            raise RunLockedError(f"{self.run_dir} is in use by another lensrl process (pid "
                                 f"{owner}); {self.hint}", owner) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    @staticmethod
    def _owner(fd: int) -> str:
        """The PID in the lock file. The holder writes it just after it takes the lock, so a
        process that lost the race by microseconds may find the file still empty: wait a
        little for it rather than report "unknown"."""
        deadline = time.monotonic() + 1.0
        while True:
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip()
            if owner or time.monotonic() > deadline:
                return owner or "unknown"
            time.sleep(0.01)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _umask() -> int:
    """The process's umask, read without changing it where Linux says it (a thread-safe read)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def make_readable(path: str | os.PathLike[str]) -> None:
    """Give ``path`` (and, for a folder, everything in it) the modes an ordinary ``open`` or
    ``mkdir`` would have: 0666 / 0777 less the umask, so 0644 / 0755 under the usual 022.
    ``tempfile`` makes its files 0600 and folders 0700, which would hide a run's config and
    checkpoints from a colleague on a shared machine, as no other ML tool does."""
    mask = _umask()
    root = Path(path)
    paths = [root, *root.rglob("*")] if root.is_dir() else [root]
    for p in paths:
        if p.is_symlink():
            continue
        os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~mask)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file and a rename: never half-written, with
    the modes of an ordinary write (:func:`make_readable`)."""
    atomic_write_bytes(path, text.encode())


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """:func:`atomic_write_text` for bytes (a compressed file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        make_readable(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# What a start that failed before its first step leaves in a run folder it created.
START_FILES = frozenset({CONFIG_FILE, LOCK_NAME})


def remove_failed_start(run_dir: Path) -> bool:
    """Remove ``run_dir`` if it holds nothing but what a failed start writes (:data:`START_FILES`);
    whether it did. A folder with metrics, checkpoints or anything else is left alone."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir() or not {p.name for p in run_dir.iterdir()} <= START_FILES:
        return False
    for name in START_FILES:
        (run_dir / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        run_dir.rmdir()
    return not run_dir.exists()


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
    """Rows of a JSONL file, by the module's rule: blank lines skipped, a torn last line
    dropped, any other bad line a ``ValueError`` naming the file and line. A missing file has
    no rows."""
    if not path.is_file():
        return []
    rows = []
    lines = path.read_text().splitlines()
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i == last:
                break  # torn final write from a kill, or a run still writing
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
        self.metrics_path = run_dir / METRICS_FILE
        self.samples_path = run_dir / SAMPLES_FILE
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


# --- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunInfo:
    """Who a run folder is.

    Fields:
        path: the run folder.
        name: ``cfg["run"]["name"]`` (the folder name when absent).
        method: ``cfg["algo"]["estimator"]``; runs with the same method are seed replicates.
        seed: ``cfg["run"]["seed"]`` (None when absent).
        config: the whole resolved config.
    """

    path: Path
    name: str
    method: str
    seed: int | None
    config: dict[str, Any]


def read_config(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """``config.json`` of a run folder as a dict (lensrl.train.config.TrainConfig.from_dict types
    it and fills sections older runs lack with their defaults)."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: is {run_dir} a run folder?")
    try:
        cfg = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(cfg, dict):
        raise ValueError(f"{path}: expected a JSON object of config sections")
    return cfg


def write_config(run_dir: Path, cfg: dict[str, Any]) -> None:
    atomic_write_text(Path(run_dir) / CONFIG_FILE, json.dumps(cfg, indent=2) + "\n")


def run_info(run_dir: str | os.PathLike[str]) -> RunInfo:
    cfg = read_config(run_dir)
    run = cfg.get("run", {})
    seed = run.get("seed")
    return RunInfo(
        path=Path(run_dir),
        name=str(run.get("name") or Path(run_dir).name),
        method=str(cfg.get("algo", {}).get("estimator", "unknown")),
        seed=None if seed is None else int(seed),
        config=cfg,
    )


def read_metrics(run_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Rows of ``metrics.jsonl`` in file order (:func:`read_jsonl`), with nulls as NaN."""
    return [{k: (math.nan if v is None else v) for k, v in row.items()}
            for row in read_jsonl(Path(run_dir) / METRICS_FILE)]


def series(rows: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """``(steps, values)`` for rows that have a finite number under ``key``."""
    steps: list[float] = []
    values: list[float] = []
    for row in rows:
        v = row.get(key)
        if isinstance(v, int | float) and math.isfinite(v) and "step" in row:
            steps.append(float(row["step"]))
            values.append(float(v))
    return steps, values

