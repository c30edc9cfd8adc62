"""`lensrl demo` end to end at a toy size: warm-up, both arms, evaluation, report."""

from __future__ import annotations

import json

from lensrl.demo import ESTIMATORS, demo

TOY = ["task.train_problems=40", "task.eval_problems=4", "rollout.samples_per_prompt=2",
       "rollout.max_new_tokens=8", "batch.prompts_per_step=2", "batch.prompts_per_update=2",
       "run.eval_every=2", "run.eval_samples=2", "model.dtype=float32"]


def test_two_step_demo_writes_runs_and_report(tmp_path, one_thread):
    out = tmp_path / "demo"
    summary = demo(out, warmup_steps=2, rl_steps=2, overrides=TOY)
    assert set(summary["timings"]) >= {"warmup_s", "report_s", "total_s"}
    assert (out / "warmup" / "model.safetensors").is_file()
    for estimator in ESTIMATORS:
        run = out / estimator
        cfg = json.loads((run / "config.json").read_text())
        assert cfg["algo"]["estimator"] == estimator
        assert cfg["model"]["init_from"] == str(out / "warmup")
        steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert steps == [0, 1, 2]
        assert (run / "eval").is_dir()
    assert (out / "report" / "index.html").is_file() and (out / "report" / "report.md").is_file()
    assert json.loads((out / "demo.json").read_text())["report"] == summary["report"]
