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

import contextlib
import fcntl
import hashlib
import json
import math
import os
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, overload

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
SAMPLES_FILE = "samples.jsonl"
CHECKPOINTS_DIR = "checkpoints"
MANIFEST_FILE = "manifest.json"
LOCK_NAME = ".lock"
EVAL_DIR = "eval"
EVAL_LOCK = ".eval.lock"  # held for the check-and-write of an evaluation file

T = TypeVar("T")


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


def checkpoint_dirs(run_dir: str | os.PathLike[str]) -> dict[int, Path]:
    """Complete checkpoints of a run by step (``checkpoints/step_<N>``; the hidden temp folders
    of a checkpoint being written are ignored)."""
    root = Path(run_dir) / CHECKPOINTS_DIR
    found: dict[int, Path] = {}
    if root.is_dir():
        for d in root.iterdir():
            if d.is_dir() and d.name.startswith("step_") and d.name[5:].isdigit():
                found[int(d.name[5:])] = d
    return found


@overload
def latest_checkpoint(run_dir: str | os.PathLike[str]) -> tuple[int, Path] | None: ...


@overload
def latest_checkpoint(run_dir: str | os.PathLike[str], read: Callable[[Path, int], T], *,
                      damaged: Callable[[int, CheckpointError], None] | None = None,
                      ) -> tuple[int, T] | None: ...


def latest_checkpoint(run_dir: str | os.PathLike[str], read: Callable[[Path, int], Any] | None = None,
                      *, damaged: Callable[[int, CheckpointError], None] | None = None,
                      ) -> tuple[int, Any] | None:
    """The newest checkpoint of a run, or None when it has none: the one place that picks it
    (the trainer's ``--resume``, the model loader, the CLI all call this).

    Without ``read``: ``(step, folder)`` of the newest complete checkpoint. With ``read``, a
    loader ``read(folder, step)`` that raises :class:`CheckpointError` for a damaged
    checkpoint: ``(step, read(folder, step))`` of the newest one it reads, each damaged one on
    the way handed to ``damaged(step, error)`` and the next older one tried. When none reads,
    a :class:`CheckpointError` names the newest one's problem and how many older ones failed."""
    found = checkpoint_dirs(run_dir)
    errors: list[CheckpointError] = []
    for step in sorted(found, reverse=True):
        if read is None:
            return step, found[step]
        try:
            return step, read(found[step], step)
        except CheckpointError as err:
            errors.append(err)
            if damaged is not None:
                damaged(step, err)
    if not errors:
        return None
    more = f" (and {len(errors) - 1} older checkpoint(s) are damaged too)" if len(errors) > 1 else ""
    raise CheckpointError(f"no usable checkpoint: {errors[0]}{more}")


# --- evaluations: eval/<step>.json, eval/<step>.<name>.json (content: lensrl.eval.evaluate) ---


class EvalExistsError(FileExistsError):
    """An evaluation of this step with other settings is already in the run folder."""


def eval_path(run_dir: str | os.PathLike[str], step: int, name: str | None = None) -> Path:
    """``eval/<step>.json``, or ``eval/<step>.<name>.json`` for a named evaluation."""
    if name is not None and not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        raise ValueError(f"evaluation name {name!r}: use letters, digits, '_' and '-' only")
    return Path(run_dir) / EVAL_DIR / f"{int(step)}{'' if name is None else '.' + name}.json"


def eval_settings(sampling: dict[str, Any] | None, problem_ids: Sequence[Any]) -> dict[str, Any]:
    """What makes two evaluations of one checkpoint the same: the sampling and the problems
    (their ids say which data they came from; the bootstrap only summarises them)."""
    return {"sampling": sampling, "problems": sorted(str(i) for i in problem_ids)}


def check_eval_target(path: Path, settings: dict[str, Any]) -> None:
    """Raise :class:`EvalExistsError` if ``path`` holds an evaluation with other ``settings``
    (:func:`eval_settings`); ``lensrl eval`` asks before its work, :func:`write_eval` again."""
    if not path.is_file():
        return
    old = json.loads(path.read_text())
    old = eval_settings(old.get("sampling"), [p["id"] for p in old.get("problems", [])])
    if old != settings:
        differ = ", ".join(k for k in settings if old.get(k) != settings[k])
        raise EvalExistsError(
            f"{path} holds an evaluation with other settings ({differ} differ); keep both "
            "with --name NAME (writes eval/<step>.NAME.json), or replace it with --overwrite")


def write_eval(run_dir: str | os.PathLike[str], step: int, result: dict[str, Any], *,
               name: str | None = None, overwrite: bool = False) -> Path:
    """Write ``eval/<step>.json`` (``eval/<step>.<name>.json``) atomically, ``step`` included.
    One with the same settings (a rerun) is replaced; one with other settings is kept and
    :class:`EvalExistsError` raised, unless ``overwrite``. The check and the write hold the
    run folder's evaluation lock (a :class:`RunLock` on ``.eval.lock``, waited for: a write is
    brief), so two evaluations cannot both pass the check; training holds ``.lock`` meanwhile."""
    path = eval_path(run_dir, step, name)
    lock = RunLock(Path(run_dir), name=EVAL_LOCK).acquire(wait=True)
    try:
        if not overwrite:
            ids = [p["id"] for p in result.get("problems", [])]
            check_eval_target(path, eval_settings(result.get("sampling"), ids))
        atomic_write_text(path, json.dumps({**result, "step": int(step)}, indent=1) + "\n")
    finally:
        lock.release()
    return path


def eval_steps(run_dir: str | os.PathLike[str], name: str | None = None) -> list[int]:
    """Steps with an ``eval/<step>.json`` (``eval/<step>.<name>.json``), ascending."""
    suffix = ".json" if name is None else f".{name}.json"
    found = (Path(run_dir) / EVAL_DIR).glob(f"*{suffix}")
    return sorted(int(s) for p in found if (s := p.name[: -len(suffix)]).isdigit())


def read_eval(run_dir: str | os.PathLike[str], step: int | None = None,
              name: str | None = None) -> dict[str, Any]:
    """Load ``eval/<step>.json`` (``eval/<step>.<name>.json``; the latest when ``step`` is
    None). Raises ``FileNotFoundError`` naming the file when there is no such evaluation."""
    if step is None:
        steps = eval_steps(run_dir, name)
        if not steps:
            raise FileNotFoundError(f"no {eval_path(run_dir, 0, name).name.replace('0', '<step>', 1)}"
                                    f" in {Path(run_dir) / EVAL_DIR}; run `lensrl eval` first")
        step = steps[-1]
    path = eval_path(run_dir, step, name)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (have steps {eval_steps(run_dir, name)})")
    data: dict[str, Any] = json.loads(path.read_text())
    data.setdefault("step", int(step))
    return data


# --- checkpoint manifests ----------------------------------------------------------------------


def file_sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def write_manifest(ckpt_dir: Path, step: int) -> None:
    """Record every file of a checkpoint folder (size and sha256) and its step in
    ``manifest.json``, so that a checkpoint copied or synced half-way is caught on load."""
    files = {}
    for path in sorted(ckpt_dir.rglob("*")):
        if path.is_file() and path.name != MANIFEST_FILE:
            files[path.relative_to(ckpt_dir).as_posix()] = {
                "size": path.stat().st_size, "sha256": file_sha256(path)}
    atomic_write_text(ckpt_dir / MANIFEST_FILE,
                      json.dumps({"format": 1, "step": step, "files": files}, indent=1) + "\n")


def check_manifest(ckpt_dir: Path, step: int) -> bool:
    """Check a checkpoint folder against its ``manifest.json``: every listed file present with
    its size and sha256, and the step the folder's name says. Returns False for a checkpoint
    written before manifests (lensrl 0.1), which the loader then checks tensor by tensor only.
    Raises :class:`CheckpointError` naming the file that does not match."""
    path = ckpt_dir / MANIFEST_FILE
    if not path.is_file():
        return False
    try:
        manifest = json.loads(path.read_text())
        files = manifest["files"]
        saved_step = manifest["step"]
        if not isinstance(files, dict):
            raise TypeError("files is not an object")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"{path}: unreadable manifest ({err})") from None
    if saved_step != step:
        raise CheckpointError(f"{path}: the manifest is for step {saved_step}, the folder for {step}")
    for rel, want in files.items():
        file = ckpt_dir / rel
        if not file.is_file():
            raise CheckpointError(f"{file}: missing (listed in {path})")
        size = file.stat().st_size
        if size != want.get("size"):
            raise CheckpointError(f"{file}: {size} bytes, the manifest says {want.get('size')} "
                                  "(copied or written only in part?)")
        if file_sha256(file) != want.get("sha256"):
            raise CheckpointError(f"{file}: sha256 differs from {path} (the file was changed)")
    return True
