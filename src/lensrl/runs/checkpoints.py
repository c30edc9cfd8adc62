"""Checkpoints of a run folder: ``checkpoints/step_<N>/``, the newest good one, and each one's
manifest of file sizes and sha256. See :mod:`lensrl.runs`."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, overload

from lensrl.runs.folder import CHECKPOINTS_DIR, MANIFEST_FILE, CheckpointError, atomic_write_text

T = TypeVar("T")


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

