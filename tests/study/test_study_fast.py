"""The study's orchestration and summary on stand-in runs (no model): fast, with known answers.

The real thing, end to end on a nano model, is test_study_e2e.py (slow).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import lensrl.study.runner as runner
from lensrl.eval import build_result, write_eval
from lensrl.eval.passk import pass_at_k_per_problem
from lensrl.study import arm_train_config, build_summary, plan_runs, run_study
from lensrl.study.records import load_study_data
from lensrl.study.summary import write_summary


def _fake_run(cfg, arm: str, seed: int, *, step: int, eval_c=None) -> Path:
    """A run folder as the trainer leaves it at ``step`` (config, metrics, a checkpoint)."""
    tc = arm_train_config(cfg, arm, seed)
    d = Path(tc.run.run_dir)
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text(json.dumps(tc.to_dict()))
    rows = [{"step": s, "time/step_s": 0.5, "groups/frac_negative": 0.4,
             "lens/adv_share_negative": 0.01 if arm == "lens" else 0.0} for s in range(1, step + 1)]
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (d / "checkpoints" / f"step_{step}").mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture
def stubbed(micro_config, monkeypatch):
    """train and evaluate replaced by stand-ins that leave the same files, and log their calls."""
    calls: list[tuple[str, object]] = []

    def fake_train(tc, *, resume=False):
        calls.append(("train", tc.run.name, resume))
        arm, seed = tc.run.name.rsplit("-seed", 1)
        return _fake_run(micro_config, arm, int(seed), step=tc.run.steps)

    def fake_eval(cfg, run_dir, step, seed, problems=None):
        calls.append(("eval", run_dir.parent.name + "-" + run_dir.name))
        records = [{"id": f"p{j}", "level": 1 + j % 2, "n": 4, "c": j % 3} for j in range(6)]
        write_eval(run_dir, step, build_result(records, sampling={"samples": 4}, resamples=10))
        return 0.25

    monkeypatch.setattr("lensrl.train.trainer.train", fake_train)
    monkeypatch.setattr(runner, "evaluate_run", fake_eval)
    monkeypatch.setattr(runner, "ensure_warmup", lambda cfg: {})
    monkeypatch.setattr(runner, "evaluate_step0", lambda cfg, seed: calls.append(("step0", seed)))
    return micro_config, calls


def test_finished_runs_are_skipped_partial_resumed_trained_only_evaluated(stubbed):
    cfg, calls = stubbed
    assert run_study(cfg, max_runs=1)["executed"] == 1
    # the warm-up is scored first, once per seed, then the runs in plan order
    assert calls == [("step0", 0), ("step0", 1), ("train", "grpo-seed0", False),
                     ("eval", "grpo-seed0")]
    records = load_study_data(cfg.results).records
    assert list(records) == [("grpo", 0)] and records["grpo", 0].problems is not None
    assert records["grpo", 0].provenance["torch"] and records["grpo", 0].config["run"]["seed"] == 0
    calls[:] = [c for c in calls if c[0] != "step0"]
    calls.clear()
    _fake_run(cfg, "lens", 0, step=2)  # trained, killed before its evaluation
    _fake_run(cfg, "grpo", 1, step=1)  # killed after the checkpoint of step 1
    counts = run_study(cfg)
    calls[:] = [c for c in calls if c[0] != "step0"]
    assert calls == [("eval", "lens-seed0"), ("train", "grpo-seed1", True),
                     ("eval", "grpo-seed1"), ("train", "lens-seed1", False), ("eval", "lens-seed1")]
    assert counts == {"planned": 4, "done_before": 1, "executed": 3, "remaining": 0}
    calls.clear()
    assert run_study(cfg)["executed"] == 0  # all done: nothing redone
    assert [c for c in calls if c[0] != "step0"] == []
    assert sorted(load_study_data(cfg.results).records) == [
        ("grpo", 0), ("grpo", 1), ("lens", 0), ("lens", 1)]
    info = json.loads((cfg.run_dir("grpo", 1) / "study.json").read_text())
    assert info["resumed_from"] == "partial" and info["eval_s"] == 0.25
    assert info["train_s"] == pytest.approx(0.5 * 2)


SEEDS = 8


def _fabricate(cfg, effect: float, rng: np.random.Generator) -> None:
    """Evaluated runs of both arms, 8 seeds, 40 problems of levels 1, 2, 4, 5, each seed with
    its own shift (shared by the arms: paired), lens better by ``effect`` in correct rate.
    8 seeds, because an exact sign-flip test over 5 pairs cannot go below p = 1/16."""
    for seed in range(SEEDS):
        shift = rng.normal(0, 0.1)
        for arm in ("grpo", "lens"):
            d = _fake_run(cfg, arm, seed, step=cfg.rl_steps)
            rate = np.clip(0.35 + shift + (effect if arm == "lens" else 0)
                           + rng.normal(0, 0.01, size=40), 0, 1)
            c = rng.binomial(4, rate)
            records = [{"id": f"p{j}", "level": (1, 2, 4, 5)[j % 4], "n": 4, "c": int(c[j])}
                       for j in range(40)]
            write_eval(d, cfg.rl_steps, build_result(records, sampling={"samples": 4},
                                                     resamples=10))
            (d / "study.json").write_text(json.dumps({"train_s": 3.0, "eval_s": 1.0}))


def _seed_pass(cfg, arm, seed, k):
    ev = json.loads((cfg.run_dir(arm, seed) / "eval" / f"{cfg.rl_steps}.json").read_text())
    return float(pass_at_k_per_problem([p["n"] for p in ev["problems"]],
                                       [p["c"] for p in ev["problems"]], k).mean())


def test_summary_detects_a_real_effect_with_seed_level_numbers(micro_config):
    cfg = micro_config
    cfg.arms["grpo"].seeds = cfg.arms["lens"].seeds = SEEDS
    _fabricate(cfg, 0.25, np.random.default_rng(0))
    s = json.loads(write_summary(cfg, build_summary(cfg)).read_text())
    grpo = [_seed_pass(cfg, "grpo", sd, 4) for sd in range(SEEDS)]
    lens = [_seed_pass(cfg, "lens", sd, 4) for sd in range(SEEDS)]
    m = s["methods"]["grpo"]["overall"]["pass@4"]
    assert m["mean"] == pytest.approx(np.mean(grpo))
    assert m["sd_seeds"] == pytest.approx(np.std(grpo, ddof=1))
    cell = s["paired"]["lens_vs_grpo"]["overall"]["pass@4"]
    assert cell["per_seed_diff"] == pytest.approx(np.subtract(lens, grpo).tolist())
    lo, hi = cell["ci95_seed_t"]
    assert 0 < lo < cell["diff"] < hi  # a 25-point effect is found at the seed level
    primary = s["primary"]["endpoints"][0]
    assert primary["endpoint"] == "all:4" and primary["p_holm"] <= 0.05
    assert primary["tost"]["equivalent"] is False
    assert s["cost"]["lens"] == {"runs": SEEDS, "train_s": 3.0 * SEEDS, "eval_s": 1.0 * SEEDS,
                                 "total_s": 4.0 * SEEDS}
    assert s["methods"]["lens"]["adv_share_negative"]["mean"] == pytest.approx(0.01)
    assert s["setting"]["frac_negative_at_step_1"]["mean"] == pytest.approx(0.4)
    assert s["mde"]["all:4"]["pairs"] == SEEDS and s["mde"]["all:4"]["mde"] > 0
    assert s["alpha_sweep"]["0.25"]["vs_baseline"]["pass@4"]["diff"] == cell["diff"]
    # tables.md, written beside it, quotes the same numbers in words
    from lensrl.study import summarize

    tables = (summarize(cfg, report=False).parent / "tables.md").read_text()
    primary_row = next(line for line in tables.splitlines() if line.startswith("| all:4 |"))
    assert f"{100 * primary['diff']:+.1f}" in primary_row and "**detected**, higher" in primary_row
    assert f"Runs finished: {2 * SEEDS} of " in tables


def test_tables_make_no_claim_from_too_few_pairs():
    from lensrl.study.tables import MIN_PAIRS, _verdict

    cell = {"diff": 0.001, "p_value": 0.5, "tost": {"margin": 0.02, "p": 0.01,
                                                    "equivalent": True}, "mde_seed_t": 0.01}
    assert "too few pairs" in _verdict(cell, "p_value", MIN_PAIRS - 1)
    assert "no difference beyond ±2.0 pp" in _verdict(cell, "p_value", MIN_PAIRS)
    cell["tost"]["equivalent"] = False
    assert _verdict(cell, "p_value", MIN_PAIRS) == "not detected (MDE 1.0 pp)"


def test_summary_of_no_effect_is_not_significant_and_states_the_mde(micro_config):
    cfg = micro_config
    cfg.arms["grpo"].seeds = cfg.arms["lens"].seeds = SEEDS
    _fabricate(cfg, 0.0, np.random.default_rng(1))
    s = build_summary(cfg)
    e = s["primary"]["endpoints"][0]
    lo, hi = e["ci95_seed_t"]
    assert lo < 0 < hi
    mde = s["mde"]["all:4"]
    assert mde["mde"] > abs(e["diff"]) and math.isfinite(mde["sd_diff"])
    assert s["complete"] is True
    # the baseline has a seed the method lacks: every number of a cell uses the same pairs
    import shutil

    shutil.rmtree(cfg.run_dir("lens", SEEDS - 1))
    s = build_summary(cfg)
    e = s["primary"]["endpoints"][0]
    mde = s["mde"]["all:4"]
    cell = s["paired"]["lens_vs_grpo"]["overall"]["pass@4"]
    assert s["paired"]["lens_vs_grpo"]["pairs"] == SEEDS - 1 == len(cell["per_seed_diff"])
    assert cell["diff"] == pytest.approx(np.mean(cell["per_seed_diff"]))
    assert cell["ci95"] == pytest.approx(cell["ci95_seed_t"])
    # every cell states its own MDE (the primary's, for the primary cell) and a TOST
    cell = s["paired"]["lens_vs_grpo"]["overall"]["pass@4"]
    assert cell["mde_seed_t"] == pytest.approx(mde["mde"])
    assert cell["tost"]["margin"] == cfg.stats.tost_margin and 0 <= cell["tost"]["p"] <= 1
    level = s["paired"]["lens_vs_grpo"]["by_level"]["level_5"]["pass@1"]
    assert level["mde_seed_t"] > 0 and level["tost"]["p"] is not None
    assert s["complete"] is False  # a lens seed is missing
    assert [r.arm for r in plan_runs(cfg)][:2] == ["grpo", "lens"]


def test_a_second_study_on_the_same_folder_stops(micro_config):
    import os

    from lensrl.runs import RunLock, RunLockedError

    # the study folder takes the run folders' one lock, so the refusal names the holder
    with (RunLock(micro_config.out_dir),
          pytest.raises(RunLockedError, match=f"pid {os.getpid()}")):
        run_study(micro_config)
    with RunLock(micro_config.out_dir):  # released with the first holder
        pass
