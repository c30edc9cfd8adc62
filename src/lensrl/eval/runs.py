"""Reading run folders (STYLE.md §11): config, metrics and the identity of a run.

No torch and nothing of the trainer: only files.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


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
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: is {run_dir} a run folder?")
    cfg: dict[str, Any] = json.loads(path.read_text())
    return cfg


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
    """Rows of ``metrics.jsonl`` in file order; nulls become NaN, blank or torn lines are skipped.

    A torn last line is expected while a run is still writing, so it is not an error.
    """
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    rows: list[dict[str, Any]] = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        rows.append({k: (math.nan if v is None else v) for k, v in row.items()})
    return rows


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
