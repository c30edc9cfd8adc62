"""`lensrl plan`: the variances it estimates from pilots and the seed counts it derives."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import lensrl.compare.stats as ss
from lensrl.cli import main
from lensrl.compare.plan import plan


def pilots(make_run: Any, rng: np.random.Generator, seeds: tuple[int, ...]) -> list[Path]:
    base = rng.normal(0, 1.5, size=50)
    runs = []
    for est in ("grpo", "lens"):
        for s in seeds:
            p = 1 / (1 + np.exp(-(base + rng.normal(0, 0.3))))
            runs.append(make_run(f"{est}-{s}", estimator=est, seed=s, c=rng.binomial(16, p)))
    return runs


def scores(runs: list[Path]) -> np.ndarray:
    out = []
    for d in runs:
        ev = json.loads((d / "eval" / "100.json").read_text())
        out.append(np.mean([p["c"] / p["n"] for p in ev["problems"]]))
    return np.array(out)


def test_paired_pilots(make_run: Any, rng: np.random.Generator) -> None:
    runs = pilots(make_run, rng, (0, 1, 2))
    result = plan(runs, delta=0.02)
    (row,) = result["rows"]
    y = scores(runs)
    sd = float((y[3:] - y[:3]).std(ddof=1))
    assert row["source"] == "paired pilot seeds" and row["sd_diff"] == pytest.approx(sd)
    assert row["seeds_paired"] == ss.seeds_needed(sd, 0.02, paired=True)
    assert row["seeds_paired"] >= 6 and not row["lower_bound"]


def test_unpaired_pilots_pool_the_arm_sds(make_run: Any, rng: np.random.Generator) -> None:
    runs = pilots(make_run, rng, (0, 1, 2))
    lens_only = [r for r in runs if "lens" in r.name]
    (row,) = plan(lens_only, delta=0.03, endpoints=[("all", 1)])["rows"]
    sd = float(scores(lens_only).std(ddof=1))
    assert row["source"] == "pooled within-arm seed sd"
    assert row["sd_seed"] == pytest.approx(sd) and row["sd_diff"] == pytest.approx(sd * math.sqrt(2))


def test_one_seed_gives_a_lower_bound(make_run: Any, rng: np.random.Generator) -> None:
    runs = pilots(make_run, rng, (0,))
    (row,) = plan(runs, delta=0.01)["rows"]
    assert row["lower_bound"] and row["source"].startswith("evaluation noise")


def test_cli_plan(
    make_run: Any, rng: np.random.Generator, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = [str(r) for r in pilots(make_run, rng, (0, 1))]
    assert main(["plan", *runs, "--delta", "2", "--primary", "all:1,levels_4-5:4"]) == 0
    out = capsys.readouterr().out
    assert "δ = 2.00 pp" in out and "levels_4-5" in out and "paired pilot seeds" in out
    assert main(["plan", *runs, "--delta", "0"]) == 2
    assert "--delta" in capsys.readouterr().err
    assert main(["plan", *runs, "--delta", "2", "--primary", "all:99"]) == 2
