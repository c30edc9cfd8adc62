"""The TRL part of the benchmark runs and reports what the lead's benchmark reads."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("trl")

from lensrl.bench import trl as bench_trl  # noqa: E402
from lensrl.policy import build_tiny  # noqa: E402


def test_measure_trl_throughput_counts_tokens() -> None:
    result = bench_trl.measure_trl_throughput(
        model_factory=lambda: build_tiny("nano", "0123456789+= ", seed=0),
        prompts=["1+2=", "3+4="],
        group_size=2,
        max_completion_length=4,
        passes=2,
        steps=1,
    )
    assert result["rollouts"] == 1 and result["optimizer_steps"] == 2
    assert 0 < result["trained_tokens"] <= 2 * 2 * 4 * 2  # prompts · G · T · passes
    assert math.isfinite(result["trl_tokens_per_s"]) and result["trl_tokens_per_s"] > 0


@pytest.mark.slow
def test_measure_trl_lens_overhead_reports_the_ratio() -> None:
    result = bench_trl.measure_trl_lens_overhead(quick=True)
    assert result["steps_per_trainer"] == bench_trl._QUICK["rounds"]
    assert 0.5 < result["trl_lens_step_overhead"] < 3.0
    assert 0 < result["trl_lens_added_fraction"] < 1
