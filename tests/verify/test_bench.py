"""The verifier benchmark: its answer set, its CLI, and (slow) a full quick run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lensrl.verify import bench


def test_answer_set_is_distinct_grouped_and_mixed() -> None:
    golds, preds = bench.answer_set(200)
    assert len(golds) == len(preds) == 200
    assert len(set(zip(golds, preds))) == 200
    assert len(set(golds)) >= 200 // 8
    assert all("\\boxed{" in p for p in preds)


def test_serial_baseline_judges() -> None:
    got = bench.serial(["\\frac12", "3"], ["\\boxed{0.5}", "\\boxed{4}"])
    assert [v.correct for v in got] == [True, False]


@pytest.mark.slow
def test_quick_run_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "verify.json"
    assert bench.main(["--quick", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    for key in (
        "serial_per_s",
        "pool_per_s",
        "verify_pool_speedup",
        "workers",
        "n_pairs",
        "slowest_hostile_s",
        "hostile_timeout_s",
        "restart_all_workers_ms",
        "extract_us_per_pair_prose",
    ):
        assert key in result
    # a hostile pair ends at its timeout; a worker starved by a loaded machine is retried with a
    # longer limit before its timeout counts (verify.pool.RETRY_*), which bounds the worst case
    from lensrl.verify.pool import RETRY_FACTOR, RETRY_ROUNDS

    worst = result["hostile_timeout_s"] * (1 + RETRY_FACTOR * RETRY_ROUNDS) + 1.5
    assert result["slowest_hostile_s"] < worst
    assert result["first_call_after_hostile_ok"] is True


def test_extraction_cost_reports_each_kind() -> None:
    got = bench.extraction_cost(20)
    assert set(got) == {
        "extract_us_per_pair_boxed",
        "extract_us_per_pair_prose",
        "extract_us_per_pair_list_gold",
    }
    assert all(0 < v < 100_000 for v in got.values())


def test_prose_set_reads_through_the_fallbacks() -> None:
    from lensrl.verify.extract import extract_prediction

    for template in bench.PROSE:
        text = template.format(a=12, b=34)
        assert extract_prediction(text).answer, text
