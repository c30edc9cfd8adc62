"""Fake run folders (config, metrics with nulls and a torn line, eval JSON), written by hand."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lensrl.eval import build_result, write_eval


def fake_run(root: Path, estimator: str, seed: int, *, evals: bool = True, m: int = 40) -> Path:
    run = root / f"{estimator}-{seed}"
    run.mkdir(parents=True)
    cfg = {
        "run": {"name": run.name, "seed": seed},
        "algo": {"estimator": estimator},
        "task": {"dataset": "builtin", "levels": [1, 2, 3, 4, 5], "eval_problems": m, "seed": 0},
        "rollout": {"max_new_tokens": 64},
    }
    (run / "config.json").write_text(json.dumps(cfg))
    rng = np.random.default_rng([seed, len(estimator)])
    bonus = 0.05 if estimator == "lens" else 0.0
    rows = []
    for step in range(1, 41):
        row: dict[str, object] = {
            "step": step,
            "reward/mean": 0.3 + step * 0.005 + bonus + rng.normal(0, 0.02),
            "groups/frac_negative": 0.45 - step * 0.002,
            "groups/frac_mixed": 0.4,
            "lens/D_mean": 2.5 if estimator == "lens" else None,
            "lens/conf_wrong_mean": 0.2,
            "lens/conf_right_mean": 0.3,
            "lens/calibrated_reward_wrong_mean": -0.02 if estimator == "lens" else None,
            "lens/adv_share_negative": 0.1 if estimator == "lens" else 0.0,
        }
        if step % 10 == 0:
            row["eval/pass@1"] = 0.4 + step * 0.004 + bonus
            row["eval/pass@1/levels_4-5"] = 0.25 + step * 0.004 + bonus
        rows.append(json.dumps(row))
    (run / "metrics.jsonl").write_text("\n".join(rows) + '\n{"step": 41, "rew')  # torn write
    if evals:
        p = np.linspace(0.05, 0.9, m)
        for step in (20, 40):
            c = rng.binomial(16, np.clip(p + bonus + step / 1000, 0, 1))
            records = [
                {"id": f"q{j}", "level": 1 + j % 5, "n": 16, "c": int(c[j]), "unjudged": 0}
                for j in range(m)
            ]
            write_eval(run, step, build_result(records, sampling={"samples": 16}, resamples=200))
    return run


@pytest.fixture
def runs(tmp_path: Path) -> list[Path]:
    return [fake_run(tmp_path / "runs", e, s) for e in ("grpo", "lens") for s in (0, 1)]


@pytest.fixture
def make_fake_run(tmp_path: Path) -> Callable[..., Path]:
    def make(estimator: str, seed: int, **kwargs: Any) -> Path:
        return fake_run(tmp_path / "runs", estimator, seed, **kwargs)

    return make
