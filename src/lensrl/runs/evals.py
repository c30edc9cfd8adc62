"""Evaluation files of a run folder: ``eval/<step>.json`` and ``eval/<step>.<name>.json`` (the
content is lensrl.eval.evaluate's). See :mod:`lensrl.runs`."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lensrl.runs.folder import EVAL_DIR, EVAL_LOCK, RunLock, atomic_write_text


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


