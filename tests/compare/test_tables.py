"""The compare table's cells and footer: MDE at zero variance, CI/p disagreement, percent."""

from __future__ import annotations

from typing import Any

from lensrl.compare.tables import disagreements, format_table, row_cells


def _row(**kw: Any) -> dict[str, Any]:
    row = {"bucket": "levels_4-5", "problems": 10, "k": 1, "method_mean": 0.4,
           "baseline_mean": 0.3, "diff": 0.1, "ci": [0.02, 0.18], "p": 0.12, "role": "secondary",
           "q_bh": 0.12, "significant": False, "mde": 0.05, "effect_size": 0.8,
           "sd_seed": {"method": 0.01, "baseline": 0.01}, "tost": None}
    return row | kw


def _result(rows: list[dict[str, Any]]) -> dict[str, Any]:
    test = {k: "…" for k in ("difference", "p_seeds", "ci_seeds", "p_checkpoints",
                             "ci_problems", "multiplicity", "mde")}
    return {"alpha": 0.05, "power": 0.8, "margin": None, "test": test, "comparisons": [
        {"method": "lens", "baseline": "grpo", "method_runs": ["a"], "baseline_runs": ["b"],
         "method_steps": [10], "baseline_steps": [10], "problems": 10, "rows": rows}]}


def test_mde_is_a_dash_when_nothing_varies_not_zero() -> None:
    assert row_cells(_row(mde=0.0))["mde"] == "–"
    assert row_cells(_row(mde=None))["mde"] == "∞"
    assert row_cells(_row(mde=0.0123))["mde"] == "1.23"
    text = format_table(_result([_row(mde=0.0)]))
    assert "MDE –: undefined" in text


def test_footer_explains_a_ci_and_a_p_that_disagree() -> None:
    assert disagreements(_result([_row()])) == ["lens levels_4-5:1"]
    assert disagreements(_result([_row(p=0.01)])) == []  # both say "differs"
    assert disagreements(_result([_row(ci=[-0.01, 0.2], p=0.3)])) == []  # both say "may not"
    text = format_table(_result([_row()]))
    assert "lens levels_4-5:1: the CI and the p disagree" in text
    assert "levels_4-5" in text and "40.00%" in text  # --primary's spelling; percent
    assert "CI and the p disagree" not in format_table(_result([_row(p=0.01)]))


def test_the_plan_table_states_the_sign_flip_floor_at_its_alpha() -> None:
    from lensrl.compare.tables import format_plan

    plan = {"delta": 0.02, "power": 0.8, "rows": []}
    assert "needs ≥ 6 pairs for p < 0.05" in format_plan({**plan, "alpha": 0.05})  # 2/64
    assert "needs ≥ 8 pairs for p < 0.01" in format_plan({**plan, "alpha": 0.01})  # 2/256


def test_an_undefined_interval_prints_as_a_dash() -> None:
    from lensrl.compare.tables import ci_text

    assert ci_text([-0.0067, 0.003]) == "[-0.67, +0.30]"
    assert ci_text([None, None]) == ci_text(None) == "–"  # one pair: no spread, no interval
