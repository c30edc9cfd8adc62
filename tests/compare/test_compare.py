"""`lensrl compare`: seed-level rows, the one-seed checkpoint test, multiplicity, pooling, CLI."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import lensrl.compare.stats as ss
from lensrl.cli import main
from lensrl.compare.arms import load_methods, method_summary
from lensrl.compare.cells import Settings, compare_runs
from lensrl.compare.tables import format_table
from lensrl.eval.passk import pass_at_k_per_problem


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
    p = ss.problem_permutation_p(a, b, permutations=20000, rng=np.random.default_rng(0))
    assert p == pytest.approx(exact_p(a, b), abs=0.015)


def test_permutation_fallback_agrees(
    monkeypatch: pytest.MonkeyPatch, rng: np.random.Generator
) -> None:
    a, b = rng.uniform(size=(3, 30)) + 0.05, rng.uniform(size=(3, 30))
    table = ss.problem_permutation_p(a, b, permutations=20000, rng=np.random.default_rng(0))
    monkeypatch.setattr(ss, "MAX_RELABELLINGS", 0)
    direct = ss.problem_permutation_p(a, b, permutations=20000, rng=np.random.default_rng(0))
    assert direct == pytest.approx(table, abs=0.015)


def test_one_seed_each_tests_checkpoints_only(make_run: Any, rng: np.random.Generator) -> None:
    c = rng.integers(0, 17, size=40)
    runs = [make_run(f"{e}-0", estimator=e, seed=0, c=c) for e in ("grpo", "lens")]
    result = compare_runs(runs, settings=Settings(resamples=200, permutations=500))
    (lens,) = result["comparisons"]
    assert lens["level"] == "checkpoints" and "no claim about the method" in lens["claim"]
    for row in lens["rows"]:
        assert row["diff"] == 0.0 and row["p"] == 1.0 and row["ci"] == [0.0, 0.0]
        assert row["sd_seed"] == {"method": None, "baseline": None}
        assert row["mde"] is not None and row["mde"] >= 0  # every non-significant row has one


def make_study(
    make_run: Any,
    rng: np.random.Generator,
    *,
    seeds: tuple[Any, Any] = ((0, 1, 2, 3), (0, 1, 2, 3)),
    effect: float = 0.0,
    seed_sd: float = 0.3,
    m: int = 40,
    prefix: str = "",
) -> list[Path]:
    """Runs of grpo and lens: per-run logit seed effects, lens adds ``effect`` to its logits."""
    base = rng.normal(0, 1.5, size=m)
    runs = []
    for est, shift, arm_seeds in (("grpo", 0.0, seeds[0]), ("lens", effect, seeds[1])):
        for seed in arm_seeds:
            u = rng.normal(0, seed_sd)
            c = rng.binomial(16, 1 / (1 + np.exp(-(base + u + shift))))
            runs.append(make_run(f"{prefix}{est}-{seed}", estimator=est, seed=seed, c=c))
    return runs


def run_scores(run_dirs: list[Path], k: int) -> dict[str, np.ndarray]:
    """Each arm's run scores on `all`, recomputed from the files (an independent oracle)."""
    out: dict[str, list[float]] = {}
    for d in run_dirs:
        cfg = json.loads((d / "config.json").read_text())
        ev = json.loads((d / "eval" / "100.json").read_text())
        n = [p["n"] for p in ev["problems"]]
        c = [p["c"] for p in ev["problems"]]
        out.setdefault(cfg["algo"]["estimator"], []).append(
            float(pass_at_k_per_problem(n, c, k).mean())
        )
    return {arm: np.array(v) for arm, v in out.items()}


def test_paired_seed_row_is_the_seed_level_test(make_run: Any, rng: np.random.Generator) -> None:
    runs = make_study(make_run, rng, seeds=((0, 1, 2, 3), (3, 2, 1, 0)))
    result = compare_runs(runs, ks=[1, 4], settings=Settings(resamples=200, permutations=500))
    (lens,) = result["comparisons"]
    assert lens["level"] == "seeds" and lens["design"] == "paired"
    row = next(r for r in lens["rows"] if r["bucket"] == "all" and r["k"] == 4)
    y = run_scores(runs, 4)
    d = y["lens"][::-1] - y["grpo"]  # lens runs were written in seed order 3, 2, 1, 0
    assert row["diff"] == pytest.approx(d.mean())
    assert row["p"] == pytest.approx(float(ss.sign_flip_p(d)))
    lo, hi = ss.t_interval(d.mean(), d.std(ddof=1) / 2, 3, 0.95)
    assert row["ci"] == pytest.approx([lo, hi])
    assert row["effect_size"] == pytest.approx(d.mean() / d.std(ddof=1))
    assert row["sd_seed"]["baseline"] == pytest.approx(y["grpo"].std(ddof=1))
    assert [s["value"] for s in row["per_seed"]["method"]] == pytest.approx(y["lens"])
    assert [s["seed"] for s in row["per_seed"]["method"]] == [3, 2, 1, 0]
    # 4 pairs: the smallest sign-flip p is 1/8, so no row can be significant: MDE ∞.
    assert row["p_min"] == 0.125 and row["mde"] is None
    split = row["var_split"]["method"]
    assert split["total"] == pytest.approx(y["lens"].var(ddof=1))
    assert split["eval_noise"] > 0 and 0 <= split["seed_share"] <= 1


def test_unpaired_when_seeds_differ(make_run: Any, rng: np.random.Generator) -> None:
    runs = make_study(make_run, rng, seeds=((0, 1, 2), (5, 6, 7, 8)))
    result = compare_runs(runs, ks=[1], settings=Settings(resamples=100, permutations=500))
    (lens,) = result["comparisons"]
    assert lens["design"] == "unpaired"
    row = next(r for r in lens["rows"] if r["bucket"] == "all")
    y = run_scores(runs, 1)
    assert row["p"] == pytest.approx(float(ss.run_permutation_p(y["lens"], y["grpo"])))
    est, se, df = ss.welch_se(y["lens"], y["grpo"])
    assert row["ci"] == pytest.approx(list(ss.t_interval(est, se, df, 0.95)))
    assert row["df"] == pytest.approx(float(df))


def test_detects_a_real_effect_with_enough_seeds(
    make_run: Any, rng: np.random.Generator
) -> None:
    seeds = tuple(range(6))
    runs = make_study(make_run, rng, seeds=(seeds, seeds), effect=1.0, seed_sd=0.1, m=60)
    result = compare_runs(runs, ks=[1], primary="all:1", settings=Settings(resamples=100, permutations=500))
    row = next(r for r in result["comparisons"][0]["rows"] if r["bucket"] == "all")
    assert row["p"] == pytest.approx(2 / 64) and row["ci"][0] > 0  # every pair agrees
    assert row["role"] == "primary" and row["p_holm"] == row["p"] and row["significant"]
    assert compare_runs(runs, ks=[1], primary="all:1", settings=Settings(resamples=100, permutations=500)) == result


def test_primary_holm_and_secondary_bh(make_run: Any, rng: np.random.Generator) -> None:
    runs = make_study(make_run, rng, effect=0.3)
    result = compare_runs(runs, ks=[1, 4], primary="all:4, levels_4-5:1", settings=Settings(resamples=100, permutations=300))
    rows = result["comparisons"][0]["rows"]
    prim = [r for r in rows if r["role"] == "primary"]
    sec = [r for r in rows if r["role"] == "secondary"]
    assert sorted((r["bucket"], r["k"]) for r in prim) == [("all", 4), ("levels_4-5", 1)]
    assert [r["p_holm"] for r in prim] == pytest.approx(ss.holm([r["p"] for r in prim]))
    assert [r["q_bh"] for r in sec] == pytest.approx(ss.bh([r["p"] for r in sec]))
    assert all(r["q_bh"] is None for r in prim) and all(r["p_holm"] is None for r in sec)
    assert result["primary"] == ["all:4", "levels_4-5:1"]
    text = format_table(result)
    assert text.index("primary endpoints") < text.index("all other cells")
    with pytest.raises(ValueError, match="is not BUCKET:K"):
        compare_runs(runs, primary="all")
    with pytest.raises(ValueError, match="no such row"):
        compare_runs(runs, ks=[1], primary="all:32")


def test_tost_equivalence(make_run: Any, rng: np.random.Generator) -> None:
    runs = make_study(make_run, rng, seeds=((0, 1, 2), (0, 1, 2)), seed_sd=0.05, m=60)
    kw: dict[str, Any] = dict(resamples=100, permutations=100)
    wide = compare_runs(runs, ks=[1], settings=Settings(margin=0.5, **kw))["comparisons"][0]["rows"][0]
    narrow = compare_runs(runs, ks=[1], settings=Settings(margin=1e-6, **kw))["comparisons"][0]["rows"][0]
    assert wide["tost"]["equivalent"] and wide["tost"]["p"] < 0.05
    assert not narrow["tost"]["equivalent"] and narrow["tost"]["margin"] == 1e-6
    assert compare_runs(runs, ks=[1], settings=Settings(**kw))["comparisons"][0]["rows"][0]["tost"] is None


def test_refuses_unlike_runs(make_run: Any, rng: np.random.Generator) -> None:
    c = rng.integers(0, 17, size=20)
    runs = [make_run(f"grpo-{s}", estimator="grpo", seed=s, c=c) for s in (0, 1)]
    runs.append(make_run("lens-0", estimator="lens", seed=0, c=c, algo={"lr": 1e-5}))
    runs.append(make_run("lens-1", estimator="lens", seed=1, c=c, algo={"lr": 3e-5}))
    with pytest.raises(ValueError, match=r"differ in config key algo\.lr"):
        compare_runs(runs, ks=[1])
    mixed = compare_runs(runs, ks=[1], allow_mixed=True, settings=Settings(resamples=50, permutations=50))
    assert any("algo.lr" in w for w in mixed["warnings"])
    assert "WARNING" in format_table(mixed)
    ignored = compare_runs(runs, ks=[1], ignore_keys=["algo.lr"], settings=Settings(resamples=50, permutations=50))
    assert ignored["warnings"] == []


def test_refuses_other_step_or_sampling(make_run: Any, rng: np.random.Generator) -> None:
    c = rng.integers(0, 17, size=20)
    late = [make_run(f"grpo-{s}", estimator="grpo", seed=s, c=c, step=200) for s in (0, 1)]
    early = [make_run(f"lens-{s}", estimator="lens", seed=s, c=c) for s in (0, 1)]
    with pytest.raises(ValueError, match="different steps"):
        compare_runs([*late, *early], ks=[1])
    hot = make_run("lens-2", estimator="lens", seed=2, c=c, step=200,
                   sampling={"samples": 16, "temperature": 1.5, "seed": 9})
    with pytest.raises(ValueError, match="sampling"):
        compare_runs([*late, hot, make_run("lens-3", estimator="lens", seed=3, c=c, step=200)])


def test_group_by_a_config_key(make_run: Any, rng: np.random.Generator) -> None:
    c = rng.integers(0, 17, size=20)
    runs = [
        make_run(f"lens-a{a}-{s}", estimator="lens", seed=s, c=c, algo={"alpha": a})
        for a in (0.25, 0.5)
        for s in (0, 1)
    ]
    methods = load_methods(runs, group_by="algo.alpha")
    assert sorted(methods) == ["algo.alpha=0.25", "algo.alpha=0.5"]
    result = compare_runs(runs, ks=[1], group_by="algo.alpha", settings=Settings(resamples=50, permutations=50))
    assert result["baseline"] == "algo.alpha=0.25" and result["group_by"] == "algo.alpha"
    assert result["comparisons"][0]["design"] == "paired"
    with pytest.raises(ValueError, match="has no key 'algo.beta'"):
        compare_runs(runs, group_by="algo.beta")


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
    result = compare_runs([lens, base], settings=Settings(resamples=100, permutations=100))
    (lens_cmp,) = result["comparisons"]
    assert lens_cmp["problems"] == 5 and lens_cmp["dropped_problems"] == 1
    assert all(r["diff"] == 0.0 for r in lens_cmp["rows"])


def test_grouping_and_baseline_choice(make_run: Any, rng: np.random.Generator) -> None:
    runs = make_study(make_run, rng, seeds=((0, 1), (0, 1)), m=10)
    methods = load_methods(runs)
    assert sorted(methods) == ["grpo", "lens"]
    assert methods["grpo"].c.shape == (2, 10)
    result = compare_runs(runs[2:], runs[:2], settings=Settings(resamples=50, permutations=50))
    assert result["baseline"] == "grpo" and result["comparisons"][0]["method"] == "lens"
    with pytest.raises(ValueError, match="two methods"):
        compare_runs(runs[:2])


def test_cli_compare(
    make_run: Any, rng: np.random.Generator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = [str(r) for r in make_study(make_run, rng, effect=0.2, m=30)]
    out = tmp_path / "cmp.json"
    args = ["compare", *runs, "--resamples", "100", "--permutations", "200", "--out", str(out)]
    assert main([*args, "--primary", "all:8", "--margin", "2"]) == 0
    text = capsys.readouterr().out
    assert "lens (4 seeds [0, 1, 2, 3]" in text and "levels_4-5" in text and "95% CI seeds" in text
    assert "primary endpoints" in text and "TOST" in text and "smallest p" in text
    data = json.loads(out.read_text())
    row = data["comparisons"][0]["rows"][0]
    for key in ("p", "ci", "p_holm", "q_bh", "mde", "effect_size", "per_seed", "var_split"):
        assert key in row
    assert data["margin"] == pytest.approx(0.02)
    assert main(["compare", runs[0]]) == 2
    assert "two methods" in capsys.readouterr().err
    assert main([*args, "--primary", "all"]) == 2
    assert "--primary" in capsys.readouterr().err
    assert main([*args, "--margin", "-1"]) == 2
    assert "--margin" in capsys.readouterr().err


def test_method_summary_ci_includes_seeds(make_run: Any, rng: np.random.Generator) -> None:
    runs = make_study(make_run, rng, seeds=((0, 1, 2), (0, 1, 2)), seed_sd=0.5)
    grpo = load_methods(runs)["grpo"]
    cell = method_summary(grpo, ks=[1])["all"]["1"]
    x = grpo.pass_at_k(1)  # (3 seeds, 40 problems)
    y = x.mean(axis=1)
    v_seed, v_prob = y.var(ddof=1) / 3, x.mean(axis=0).var(ddof=1) / 40
    df = (v_seed + v_prob) ** 2 / (v_seed**2 / 2 + v_prob**2 / 39)  # Welch–Satterthwaite
    lo, hi = ss.t_interval(y.mean(), np.sqrt(v_seed + v_prob), df, 0.95)
    assert cell["ci"] == pytest.approx([lo, hi]) and cell["per_seed"] == pytest.approx(y)
    assert cell["seeds"] == 3 and cell["ci_kind"] == "t: seeds and problems"
    one = method_summary(load_methods(runs[:1])["grpo"], ks=[1])["all"]["1"]
    assert one["ci_kind"].startswith("bootstrap over problems")
