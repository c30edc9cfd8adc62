"""Paired comparison: the permutation test against exact enumeration, CIs, grouping, the CLI."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import lensrl.eval.compare as cmp
from lensrl.cli import main
from lensrl.eval import compare_runs, load_methods


def exact_p(a: np.ndarray, b: np.ndarray) -> float:
    """The permutation p over every relabelling of every problem (tiny m only)."""
    s_a = a.shape[0]
    pooled = np.concatenate([a, b]).T
    obs = abs(a.mean(0).mean() - b.mean(0).mean())
    per_problem = [
        [
            pooled[j, list(S)].mean() - np.delete(pooled[j], list(S)).mean()
            for S in itertools.combinations(range(pooled.shape[1]), s_a)
        ]
        for j in range(pooled.shape[0])
    ]
    stats = [abs(np.mean(choice)) for choice in itertools.product(*per_problem)]
    return float(np.mean([s >= obs - 1e-12 for s in stats]))


@pytest.mark.parametrize(("s_a", "s_b", "m"), [(1, 1, 8), (2, 2, 3), (2, 1, 4)])
def test_permutation_p_matches_exact_enumeration(
    s_a: int, s_b: int, m: int, rng: np.random.Generator
) -> None:
    a = rng.uniform(size=(s_a, m)) + 0.15
    b = rng.uniform(size=(s_b, m))
    p = cmp.permutation_p(a, b, permutations=20000, rng=np.random.default_rng(0))
    assert p == pytest.approx(exact_p(a, b), abs=0.015)


def test_permutation_fallback_agrees(
    monkeypatch: pytest.MonkeyPatch, rng: np.random.Generator
) -> None:
    a, b = rng.uniform(size=(3, 30)) + 0.05, rng.uniform(size=(3, 30))
    table = cmp.permutation_p(a, b, permutations=20000, rng=np.random.default_rng(0))
    monkeypatch.setattr(cmp, "MAX_SUBSETS", 0)
    direct = cmp.permutation_p(a, b, permutations=20000, rng=np.random.default_rng(0))
    assert direct == pytest.approx(table, abs=0.015)


def test_identical_methods_give_p_one(make_run: Any, rng: np.random.Generator) -> None:
    c = rng.integers(0, 17, size=40)
    runs = [make_run(f"{e}-0", estimator=e, seed=0, c=c) for e in ("grpo", "lens")]
    result = compare_runs(runs, resamples=200, permutations=500)
    for row in result["comparisons"][0]["rows"]:
        assert row["diff"] == 0.0 and row["p"] == 1.0 and row["ci"] == [0.0, 0.0]
        assert row["ci_seeds"] is None  # one seed per method


def make_pair(make_run: Any, rng: np.random.Generator, shift: float, m: int = 120) -> list[Path]:
    """Two seeds of grpo and of lens; lens solves each problem `shift` more often."""
    p = rng.uniform(0, 0.8, size=m)
    runs = []
    for est, bonus in (("grpo", 0.0), ("lens", shift)):
        for seed in (0, 1):
            c = rng.binomial(16, np.clip(p + bonus, 0, 1))
            runs.append(make_run(f"{est}-{seed}", estimator=est, seed=seed, c=c))
    return runs


def test_detects_a_real_difference(make_run: Any, rng: np.random.Generator) -> None:
    runs = make_pair(make_run, rng, shift=0.1)
    result = compare_runs(runs, resamples=500, permutations=2000)
    assert result["baseline"] == "grpo"
    (lens,) = result["comparisons"]
    assert lens["method"] == "lens" and lens["method_runs"] == ["lens-0", "lens-1"]
    row = next(r for r in lens["rows"] if r["bucket"] == "all" and r["k"] == 1)
    assert row["diff"] == pytest.approx(0.1, abs=0.03)
    assert row["ci"][0] > 0 and row["p"] < 0.001
    lo, hi = row["ci_seeds"]
    assert lo <= row["ci"][0] + 1e-9 and hi >= row["ci"][1] - 1e-9  # seeds widen it
    assert {r["bucket"] for r in lens["rows"]} >= {"all", "level_1", "levels_4-5"}
    assert compare_runs(runs, resamples=500, permutations=2000) == result  # seeded


def test_pairs_by_id_not_by_position(make_run: Any) -> None:
    c = [0, 4, 8, 12, 16]
    ids = ["a", "b", "c", "d", "e"]
    base = make_run("grpo-0", estimator="grpo", seed=0, c=c, ids=ids)
    # Same per-problem results, shuffled order and one extra problem: no difference at all.
    order = [3, 0, 4, 1, 2]
    lens = make_run(
        "lens-0",
        estimator="lens",
        seed=0,
        c=[c[i] for i in order] + [16],
        ids=[ids[i] for i in order] + ["extra"],
        levels=[1 + i % 5 for i in order] + [1],
    )
    result = compare_runs([lens, base], resamples=100, permutations=100)
    (lens_cmp,) = result["comparisons"]
    assert lens_cmp["problems"] == 5 and lens_cmp["dropped_problems"] == 1
    assert all(r["diff"] == 0.0 for r in lens_cmp["rows"])


def test_grouping_and_baseline_choice(make_run: Any, rng: np.random.Generator) -> None:
    runs = make_pair(make_run, rng, shift=0.0, m=10)
    methods = load_methods(runs)
    assert sorted(methods) == ["grpo", "lens"]
    assert methods["grpo"].c.shape == (2, 10)
    result = compare_runs(runs[2:], runs[:2], resamples=50, permutations=50)
    assert result["baseline"] == "grpo" and result["comparisons"][0]["method"] == "lens"
    with pytest.raises(ValueError, match="two methods"):
        compare_runs(runs[:2])


def test_cli_compare(
    make_run: Any, rng: np.random.Generator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = [str(r) for r in make_pair(make_run, rng, shift=0.05, m=30)]
    out = tmp_path / "cmp.json"
    args = ["compare", *runs, "--resamples", "100", "--permutations", "200", "--out", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "lens (2 seeds" in text and "L4–5" in text and "95% CI" in text
    assert json.loads(out.read_text())["comparisons"][0]["rows"]
    assert main(["compare", runs[0]]) == 2
    assert "two methods" in capsys.readouterr().err
