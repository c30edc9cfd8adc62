"""``lensrl bench --only real``'s code path on a nano model (the real run uses SmolLM2)."""

from __future__ import annotations

import argparse
import json
import math

import pytest

pytest.importorskip("trl")

import lensrl.bench as bench  # noqa: E402
from lensrl.bench import real  # noqa: E402

TINY = dict(model="nano", prompts=2, group_size=4, max_new_tokens=8, rounds=1,
            template="{problem} \\boxed{{}}\n", levels=[1, 2],
            lora={"r": 2, "alpha": 4, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]})


@pytest.mark.usefixtures("one_thread")
def test_lora_variant_times_both_trainers_on_the_same_work():
    result = real.measure_real({**TINY, "variants": ["lora"]}, isolate=False)
    lora = result["lora"]
    # the same adapters on both sides: r·(in + out) per adapted projection and layer
    assert lora["trainable_params"]["lensrl"] == lora["trainable_params"]["trl"] == 2 * 2 * (
        2 * 64 * 2)
    assert lora["trainable_params"]["lensrl"] < lora["params"] / 10
    assert len(lora["lensrl_steps"]) == len(lora["trl_steps"]) == 2  # one A B B A round
    for row in lora["lensrl_steps"] + lora["trl_steps"]:
        assert 0 < row["generated_tokens"] <= 2 * 4 * 8
        assert row["tokens"] == row["generated_tokens"] + row["trained_tokens"]
        assert math.isclose(row["tokens_per_s"], row["tokens"] / row["step_s"])
    (ratio,) = lora["per_round_ratios"]
    assert lora["lensrl_vs_trl_throughput"] == ratio > 0
    mem = lora["memory_mib"]
    assert 0 < mem["lensrl_rss_after_load"] < 1.01 * mem["lensrl_peak_rss"]
    assert mem["lensrl_peak_rss"] <= mem["peak_rss_both"]
    assert mem["lensrl_step_above_load"] >= 0 and mem["lensrl_step_peak_rss"] > 0
    assert "full" not in result and "lora_vs_full_lensrl" not in result


@pytest.mark.usefixtures("one_thread")
def test_lensrl_memory_measures_lensrl_alone():
    full = real.lensrl_memory(TINY, "full", steps=1)
    lora = real.lensrl_memory(TINY, "lora", steps=1)
    assert len(full["step_s"]) == 1 and full["step_s"][0] > 0
    assert lora["trainable_params"] == 2 * 2 * (2 * 64 * 2) < full["trainable_params"]
    for m in (full, lora):
        # two sources (/proc/self/statm, ru_maxrss) that differ by a few pages
        assert m["rss_after_load_mib"] > 0 and m["peak_rss_load_mib"] > 0
        assert m["peak_rss_steps_mib"] >= m["steps_above_load_mib"] >= 0


def test_only_real_writes_real_json_and_its_headline(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(bench, "matmul_gflops", lambda *a, **k: 1.0)
    monkeypatch.setattr(real, "measure_real", lambda **kw: {
        "full": {"lensrl_vs_trl_throughput": 2.5}, "lora": {"lensrl_vs_trl_throughput": 1.5}})
    p = argparse.ArgumentParser()
    bench.configure_parser(p)
    assert bench.run(p.parse_args(["--only", "real"])) == 0
    data = json.loads((tmp_path / "runs" / "bench" / "real.json").read_text())
    assert data["headline"]["real_vs_trl_throughput"]["meets_goal"] is True
    assert data["headline"]["real_vs_trl_throughput_lora"]["meets_goal"] is False
    assert data["headline"]["lens_step_overhead"]["value"] is None  # nothing else ran


def test_a_plain_bench_run_skips_real(monkeypatch):
    monkeypatch.setattr(bench, "matmul_gflops", lambda *a, **k: 1.0)
    monkeypatch.setattr(real, "measure_real", lambda **kw: pytest.fail("real ran"))
    monkeypatch.setattr(bench, "advantage_ms", lambda *a, **k: {})
    results = bench.bench(True, {"advantage"})
    assert "real" not in results
