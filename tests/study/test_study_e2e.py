"""The micro study end to end on a nano model: 2 arms x 2 seeds x 2 steps, interrupted, resumed
without redoing finished runs, summarised and reported.

Slow (about 45 s of CPU, most of it starting models and verifier pools for 4 runs and their
evaluations); test_study_fast.py covers the same logic on stand-in runs in the default suite.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lensrl.eval.passk import pass_at_k_per_problem
from lensrl.study import arm_train_config, build_summary, load_study, run_order, run_study
from lensrl.study.report import write_report
from lensrl.study.runner import run_progress
from lensrl.study.summary import write_summary
from lensrl.train.trainer import train

from .conftest import micro_dict, write_config

pytestmark = pytest.mark.slow


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


@pytest.fixture(scope="module")
def micro(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two runs, then a run killed after its first step (a checkpoint at step 1, as a SIGKILL
    after that checkpoint leaves it), then a second call that finishes the study."""
    root = tmp_path_factory.mktemp("micro")
    cfg = load_study(write_config(root, micro_dict(root)))
    first = run_study(cfg, max_runs=2, jobs=2)  # two spawned workers, then one process
    plan = run_order(cfg)
    done = {r.run_dir: (r.run_dir / "eval" / "2.json").stat().st_mtime_ns for r in plan[:2]}
    killed = plan[2]
    cut = arm_train_config(cfg, killed.arm, killed.seed)
    cut.run.steps = 1  # a resume may change run.steps (lensrl.train.state.RESUMABLE_CHANGES)
    train(cut)
    step1 = _lines(killed.run_dir / "metrics.jsonl")
    state_killed = run_progress(killed.run_dir, cfg.rl_steps)
    second = run_study(cfg)
    summary = build_summary(cfg)
    path = write_summary(cfg, summary)
    report = write_report(cfg)
    return {"cfg": cfg, "first": first, "second": second, "done": done, "killed": killed,
            "step1": step1, "state_killed": state_killed, "summary": summary, "path": path,
            "report": report, "plan": plan}


def test_interrupted_study_resumes_without_redoing_finished_runs(micro):
    assert micro["first"]["executed"] == 2 and micro["first"]["remaining"] == 2
    assert micro["state_killed"] == "partial"
    assert micro["second"] == {"planned": 4, "done_before": 2, "executed": 2, "remaining": 0}
    for run_dir, mtime in micro["done"].items():  # finished runs untouched
        assert (run_dir / "eval" / "2.json").stat().st_mtime_ns == mtime
        assert json.loads((run_dir / "study.json").read_text())["resumed_from"] == "todo"
    killed = micro["killed"].run_dir
    rows = [json.loads(line) for line in _lines(killed / "metrics.jsonl")]
    assert [r["step"] for r in rows] == [1, 2]
    assert _lines(killed / "metrics.jsonl")[0] == micro["step1"][0]  # step 1 kept, not redone
    assert json.loads((killed / "study.json").read_text())["resumed_from"] == "partial"
    assert all(run_progress(r.run_dir, 2) == "done" for r in micro["plan"])


def test_same_seed_sees_the_same_problems_in_every_arm(micro):
    def problems(run_dir: Path) -> list[tuple[int, str]]:
        rows = [json.loads(line) for line in _lines(run_dir / "samples.jsonl")]
        return [(r["step"], r["problem_id"]) for r in rows]

    cfg = micro["cfg"]
    for seed in (0, 1):
        assert problems(cfg.run_dir("grpo", seed)) == problems(cfg.run_dir("lens", seed))
    assert problems(cfg.run_dir("grpo", 0)) != problems(cfg.run_dir("grpo", 1))


def test_summary_has_the_documented_shape(micro):
    s = json.loads(micro["path"].read_text())  # strict JSON: no NaN
    assert {"setting", "primary", "methods", "paired", "alpha_sweep", "mde", "cost"} <= set(s)
    assert s["complete"] is True and s["setting"]["runs_done"] == 4
    assert s["setting"]["G"] == 4 and s["setting"]["samples_per_run"] == 2 * 4 * 4
    for arm in ("grpo", "lens"):
        m = s["methods"][arm]
        assert m["seeds"] == [0, 1]
        assert set(m["overall"]) == {"pass@1", "pass@2", "pass@4"}
        assert {"level_1", "level_2", "level_4", "level_5", "levels_4-5"} == set(m["by_level"])
        for cell in [m["overall"]["pass@4"], m["by_level"]["levels_4-5"]["pass@2"]]:
            lo, hi = cell["ci95"]
            assert lo <= cell["mean"] <= hi
    cell = s["paired"]["lens_vs_grpo"]["overall"]["pass@4"]
    assert {"diff", "ci95", "p_value", "p_holm", "q_bh"} <= set(cell)
    assert len(cell["ci95"]) == 2 and 0 < cell["p_value"] <= 1
    assert [e["endpoint"] for e in s["primary"]["endpoints"]] == ["all:4", "levels_4-5:2"]
    for e in s["primary"]["endpoints"]:
        assert e["p_holm"] >= e["p_value"]
        assert set(e["tost"]) == {"margin", "p", "equivalent"}
    other = s["paired"]["lens_vs_grpo"]["overall"]["pass@1"]
    assert other["p_holm"] is None and other["q_bh"] >= other["p_value"]
    assert set(s["alpha_sweep"]) == {"0.25"}
    assert s["alpha_sweep"]["0.25"]["arm"] == "lens"
    assert set(s["mde"]) == {"all:4", "levels_4-5:2"} and s["mde"]["all:4"]["pairs"] == 2
    assert s["cost"]["grpo"]["runs"] == 2 and s["cost"]["lens"]["total_s"] > 0
    assert (micro["report"].parent / "report.md").is_file()


def test_summary_numbers_are_the_runs_numbers(micro):
    """Recomputed from the eval files: pass@4 per seed, the arm mean and the paired diff."""
    cfg, s = micro["cfg"], micro["summary"]

    def seed_pass4(arm: str, seed: int) -> float:
        ev = json.loads((cfg.run_dir(arm, seed) / "eval" / "2.json").read_text())
        n = [p["n"] for p in ev["problems"]]
        c = [p["c"] for p in ev["problems"]]
        return float(pass_at_k_per_problem(n, c, 4).mean())

    grpo = [seed_pass4("grpo", sd) for sd in (0, 1)]
    lens = [seed_pass4("lens", sd) for sd in (0, 1)]
    assert math.isclose(s["methods"]["grpo"]["overall"]["pass@4"]["mean"], np.mean(grpo))
    cell = s["paired"]["lens_vs_grpo"]["overall"]["pass@4"]
    assert np.allclose(cell["per_seed_diff"], np.subtract(lens, grpo))
    assert math.isclose(cell["diff"], np.mean(lens) - np.mean(grpo), abs_tol=1e-12)


def test_dry_run_after_the_runs_uses_their_times_and_variance(micro):
    from lensrl.study.runner import format_status

    text = format_status(micro["cfg"])
    assert "runs: 4 in 2 arms; done 4" in text
    assert "median of 4 finished runs" in text
    assert "seed plan all:4: sd of paired differences" in text
    assert "seed plan levels_4-5:2:" in text


def test_the_warm_up_is_scored_at_step_0_and_every_record_names_it(micro):
    from safetensors.torch import load_file

    from lensrl.runs import file_sha256, latest_checkpoint
    from lensrl.study.records import STEP0, load_study_data
    from lensrl.study.runner import step0_dir

    cfg = micro["cfg"]
    warm = cfg.warmup_dir / "model.safetensors"
    records = load_study_data(cfg.results).records
    assert sorted(records) == sorted([(STEP0, 0), (STEP0, 1), ("grpo", 0), ("grpo", 1),
                                      ("lens", 0), ("lens", 1)])
    for seed in (0, 1):  # checkpoint 0 of the step-0 folder is the warm-up itself
        step, ckpt = latest_checkpoint(step0_dir(cfg, seed))
        assert step == 0
        saved, start = load_file(ckpt / "model" / "model.safetensors"), load_file(warm)
        assert all(saved[k].equal(start[k]) for k in start)
    assert {r.provenance["warmup_sha256"] for r in records.values()} == {file_sha256(warm)}
    assert all(r.problems is not None and r.provenance["commit"] for r in records.values())
    # the summary pairs every arm with the warm-up, seed by seed
    change = micro["summary"]["from_step0"]["grpo"]["overall"]["pass@1"]
    per = [records["grpo", s].values["all"][1] - records[STEP0, s].values["all"][1]
           for s in (0, 1)]
    assert change["diff"] == pytest.approx(sum(per) / 2)
