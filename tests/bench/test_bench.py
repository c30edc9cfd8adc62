"""`lensrl bench`: the measuring helpers, and one very small run of the command."""

from __future__ import annotations

import argparse
import json

import pytest
import torch

from lensrl import bench
from lensrl.bench import common
from lensrl.bench import trainer as bench_trainer

pytestmark = pytest.mark.usefixtures("one_thread")


def test_is_linear_fits_a_fixed_cost_plus_a_slope():
    fit = common.is_linear([8, 16, 32], [1.0 + 0.5 * 8, 1.0 + 0.5 * 16, 1.0 + 0.5 * 32])
    assert fit["linear"] and fit["intercept"] == pytest.approx(1.0)
    assert fit["slope"] == pytest.approx(0.5)
    assert not common.is_linear([8, 16, 32], [1.0, 4.0, 16.0])["linear"]  # quadratic


def test_headline_applies_each_goal_in_its_direction():
    h = bench.headline({"lens": {"lens_step_overhead": 1.2},
                        "verify": {"verify_pool_speedup": 1.7}})
    assert h["lens_step_overhead"]["meets_goal"] is False
    assert h["verify_pool_speedup"]["meets_goal"] is True
    assert h["trainer_vs_trl_throughput"] == {"value": None, "goal": ">= 1.5",
                                              "meets_goal": None}


def test_advantage_ms_times_both_estimators():
    out = bench.advantage_ms((64, 128), group_size=16, reps=1)
    assert set(out["grpo"]) == set(out["lens"]) == {"64", "128"}
    assert all(v > 0 for v in out["lens"].values())


def test_peak_rss_sees_an_allocation():
    with common.PeakRSS() as mem:
        x = torch.ones(16 * 2**20 // 4)  # 16 MiB, touched
        x += 1
    assert mem.mib > 8


def test_command_writes_json(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "matmul_gflops", lambda *a, **k: 1.0)
    out = tmp_path / "r.json"
    p = argparse.ArgumentParser()
    bench.configure_parser(p)
    args = p.parse_args(["--quick", "--only", "advantage", "--out", str(out)])
    monkeypatch.setitem(bench.QUICK, "advantage_n", (32,))
    monkeypatch.setitem(bench.QUICK, "advantage_reps", 1)
    assert bench.run(args) == 0
    data = json.loads(out.read_text())
    assert data["machine"]["threads"] == 1 and data["quick"] is True
    assert "32" in data["advantage_ms"]["lens"]
    assert set(data["headline"]) == set(bench.GOALS)


def test_train_config_uses_the_spec_template_and_skip_flag(tmp_path):
    from lensrl.data import BUILTIN_TEMPLATE, PLAIN_TEMPLATE

    cfg = bench_trainer.train_config(str(tmp_path), estimator="grpo", prompts=2, group_size=4,
                             max_new_tokens=8, skip_zero_advantage=False)
    assert cfg.task.template == BUILTIN_TEMPLATE and cfg.algo.skip_zero_advantage is False
    assert bench.template_text("plain") == PLAIN_TEMPLATE
    assert bench.QUICK["template"] == bench.FULL["template"] == "builtin"


def test_speedups_times_every_variant(tmp_path):
    spec = {"model": "nano", "prompts": 2, "group_size": 4, "max_new_tokens": 8, "steps": 2,
            "template": "builtin"}
    out = bench.speedups(spec, tmp_path)
    assert set(out["update_s"]) == {"padded", "sorted_trimmed", "shared_prefix"}
    assert all(v > 0 for v in out["update_s"].values()) and out["update_speedup"]["padded"] == 1
    assert set(out["rollout_s"]) == {"hf_forward", "llama_step"} and out["rollout_speedup"] > 0
