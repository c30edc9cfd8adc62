"""`lensrl demo` end to end at a toy size: warm-up, both arms, evaluation, report."""

from __future__ import annotations

import json

import pytest

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


# `lensrl demo --real` on a toy model: the smollm2 preset's schedule, the built-in task.
REAL_TOY = ["model.name=nano", "task.source=dataset", "task.template={problem} \\boxed{{}}\n",
            "task.levels=[1]", *TOY]


@pytest.mark.slow
def test_real_demo_resumes_and_reports_before_and_after(tmp_path, one_thread):
    from lensrl.demo import demo_real, format_before_after

    out = tmp_path / "real"
    summary = demo_real(out, rl_steps=2, overrides=REAL_TOY)
    for estimator in ESTIMATORS:
        change = summary["before_after"][estimator]
        assert change["steps"] == [0, 2] and change["problems"] == 4
        assert "pass@8" not in change  # 2 samples per problem: pass@8 is undefined
        for k in ("pass@1",):
            r = change[k]
            assert r["delta"] == r["after"] - r["before"]
            assert r["ci"][0] <= r["delta"] <= r["ci"][1] and 0 < r["p"] <= 1
    assert "lensrl plan" not in summary["plan_text"] and "Seeds per arm" in summary["plan_text"]
    assert "pass@1" in format_before_after(summary["before_after"])
    assert (out / "report" / "index.html").is_file()
    # a rerun keeps finished runs: nothing is trained again
    logs = {e: (out / e / "metrics.jsonl").read_text() for e in ESTIMATORS}
    demo_real(out, rl_steps=2, overrides=REAL_TOY)
    assert {e: (out / e / "metrics.jsonl").read_text() for e in ESTIMATORS} == logs


def test_before_after_is_paired_by_problem(tmp_path):
    from lensrl.demo import before_after
    from lensrl.eval import build_result, write_eval

    sampling = {"samples": 8, "temperature": 1.0, "top_p": 1.0, "max_new_tokens": 8, "seed": 0,
                "batch_prompts": 32}
    ids = [f"p{i}" for i in range(30)]
    before = [{"id": i, "level": 1, "n": 8, "c": j % 3, "unjudged": 0} for j, i in enumerate(ids)]
    after = [{**r, "c": r["c"] + 4} for r in reversed(before)]  # another order, +4 of 8 each
    write_eval(tmp_path, 0, build_result(before, sampling=sampling))
    write_eval(tmp_path, 10, build_result(after, sampling=sampling))
    r = before_after(tmp_path)
    assert r["steps"] == [0, 10] and r["problems"] == 30
    assert abs(r["pass@1"]["delta"] - 0.5) < 1e-12  # +4/8 on every problem
    assert r["pass@1"]["ci"][0] > 0 and r["pass@1"]["p"] < 0.01
    assert 0 < r["pass@8"]["delta"] < 1
