"""Fake run folders written by hand (no model, no trainer), for tests/eval and tests/compare."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from lensrl.eval import build_result, write_eval

MakeRun = Callable[..., Path]


def write_run(
    root: Path,
    name: str,
    *,
    estimator: str,
    seed: int,
    c: Sequence[int] | None = None,
    n: int = 16,
    levels: Sequence[int | None] | None = None,
    ids: Sequence[str] | None = None,
    step: int = 100,
    algo: dict[str, object] | None = None,
    sampling: dict[str, object] | None = None,
) -> Path:
    """A run folder with config.json and, when ``c`` is given, ``eval/<step>.json``.

    ``algo`` adds keys to the config's ``algo`` section; ``sampling`` replaces the eval's
    sampling record (default ``{"samples": n}``).
    """
    run = root / name
    run.mkdir(parents=True)
    cfg = {
        "run": {"name": name, "seed": seed},
        "algo": {"estimator": estimator, **(algo or {})},
        "task": {
            "dataset": "builtin",
            "levels": [1, 2, 3, 4, 5],
            "eval_problems": 8,
            "seed": 0,
            "template": None,
        },
        "rollout": {"max_new_tokens": 64},
    }
    (run / "config.json").write_text(json.dumps(cfg))
    if c is not None:
        m = len(c)
        ids = ids if ids is not None else [f"q{j}" for j in range(m)]
        levels = levels if levels is not None else [1 + j % 5 for j in range(m)]
        records = [
            {"id": ids[j], "level": levels[j], "n": n, "c": int(c[j]), "unjudged": 0}
            for j in range(m)
        ]
        write_eval(run, step, build_result(records, sampling=sampling or {"samples": n}, resamples=200))
    return run


@pytest.fixture
def make_run(tmp_path: Path) -> MakeRun:
    def make(name: str, **kwargs: object) -> Path:
        return write_run(tmp_path, name, **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
