"""The study's orchestration and summary on stand-in runs (no model): fast, with known answers.

The real thing, end to end on a nano model, is test_study_e2e.py (slow).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import lensrl.study.runner as runner
from lensrl.eval import build_result, write_eval
from lensrl.study import arm_train_config, run_study
from lensrl.study.records import load_study_data


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


@pytest.mark.slow  # its records name the git commit: two `git` subprocesses
def test_finished_runs_are_skipped_partial_resumed_trained_only_evaluated(stubbed):
    cfg, calls = stubbed
    assert run_study(cfg, max_runs=1)["executed"] == 1
    # the warm-up is scored first, once per seed, then the runs in plan order
    assert calls == [("step0", 0), ("step0", 1), ("train", "grpo-seed0", False),
                     ("eval", "grpo-seed0")]
    records = load_study_data(cfg.results).records
    assert list(records) == [("grpo", 0)] and records["grpo", 0].problems is not None
    prov = records["grpo", 0].provenance  # taken by the process that ran it
    assert prov["torch"] and "warmup_sha256" in prov and "commit" in prov
    assert records["grpo", 0].config["run"]["seed"] == 0
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


def test_a_second_study_on_the_same_folder_stops(micro_config):
    import os

    from lensrl.runs import RunLock, RunLockedError

    # the study folder takes the run folders' one lock, so the refusal names the holder
    with (RunLock(micro_config.out_dir),
          pytest.raises(RunLockedError, match=f"pid {os.getpid()}")):
        run_study(micro_config)
    with RunLock(micro_config.out_dir):  # released with the first holder
        pass


@pytest.mark.slow  # its records name the git commit: two `git` subprocesses
def test_records_lost_or_never_written_are_rebuilt_from_the_run_folders(stubbed):
    cfg, _ = stubbed
    run_study(cfg)
    path = load_study_data(cfg.results).path
    before = path.read_bytes()
    path.unlink()  # e.g. a study killed between an evaluation and its record
    assert runner.sync_records(cfg) == 4
    assert sorted(load_study_data(cfg.results).records) == [
        ("grpo", 0), ("grpo", 1), ("lens", 0), ("lens", 1)]
    assert runner.sync_records(cfg) == 0  # nothing missing: nothing rewritten
    got = load_study_data(cfg.results).records["lens", 1]
    assert got.train_s == pytest.approx(1.0) and got.eval_s == 0.25
    assert len(before) > 0
