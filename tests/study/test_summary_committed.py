"""The committed summary.json, recomputed: the two primaries' diff, CI, p, Holm p, TOST and MDE
from their committed per-seed values, with the one engine (lensrl.compare.stats), to float
precision. The docs quote these files; this keeps the quotes tied to the data.

Every committed summary is checked: results/study/summary.json (when the study has written one)
and results/study/first/summary.json (the first study, 2026-12-02).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import lensrl.compare.stats as ss

RESULTS = Path(__file__).resolve().parents[2] / "results" / "study"
COMMITTED = [p for p in (RESULTS / "summary.json", RESULTS / "first" / "summary.json")
             if p.is_file()]


def _cell(summary: dict[str, Any], bucket: str, k: int) -> dict[str, Any]:
    block = summary["paired"][summary["primary"]["comparison"]]
    table = block["overall"] if bucket == "all" else block["by_level"][bucket]
    cell: dict[str, Any] = table[f"pass@{k}"]
    return cell


def _per_seed_diff(cell: dict[str, Any]) -> np.ndarray:
    """Method − baseline of every seed pair, from the committed per-seed values."""
    method = {e["seed"]: e["value"] for e in cell["per_seed"]["method"]}
    baseline = {e["seed"]: e["value"] for e in cell["per_seed"]["baseline"]}
    seeds = sorted(set(method) & set(baseline))
    return np.array([method[s] - baseline[s] for s in seeds])


def test_a_committed_summary_exists() -> None:
    assert COMMITTED, f"no summary.json under {RESULTS}"


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: str(p.relative_to(RESULTS)))
def test_the_primaries_recompute_from_the_per_seed_values(path: Path) -> None:
    s = json.loads(path.read_text())
    primary = s["primary"]
    alpha = primary.get("alpha", 0.05)
    margin = primary["tost_margin"]
    confidence = 0.95
    endpoints = [e["endpoint"] for e in primary["endpoints"]]
    p_values = []
    for e in primary["endpoints"]:
        bucket, _, k = e["endpoint"].rpartition(":")
        d = _per_seed_diff(_cell(s, bucket, int(k)))
        mean, se, df = ss.paired_se(d)
        assert e["diff"] == pytest.approx(float(mean), rel=1e-12, abs=1e-15)
        lo, hi = ss.t_interval(mean, se, df, confidence)
        assert e["ci95"] == pytest.approx([float(lo), float(hi)], rel=1e-12, abs=1e-15)
        p = float(ss.sign_flip_p(d))
        assert e["p_value"] == pytest.approx(p, rel=1e-12)
        p_values.append(p)
        assert e["tost"]["p"] == pytest.approx(ss.tost_p(float(mean), float(se), df, margin),
                                               rel=1e-9, abs=1e-15)
        assert e["tost"]["equivalent"] == (e["tost"]["p"] < alpha)
        mde = s["mde"][e["endpoint"]]
        assert mde["pairs"] == len(d)
        assert mde["mde"] == pytest.approx(ss.mde(float(se), df, alpha=alpha, power=mde["power"]),
                                           rel=1e-9)
    holm = ss.holm(p_values)
    for e, adjusted in zip(primary["endpoints"], holm):
        assert e["p_holm"] == pytest.approx(float(adjusted), rel=1e-12)
    assert len(endpoints) == 2


def test_the_first_studys_primaries_are_the_quoted_numbers() -> None:
    """The numbers docs/study.md quotes from the first study, stated once here."""
    path = RESULTS / "first" / "summary.json"
    if not path.is_file():
        pytest.skip("the first study's summary is not committed")
    e = {x["endpoint"]: x for x in json.loads(path.read_text())["primary"]["endpoints"]}
    assert e["all:8"]["diff"] == pytest.approx(-0.0018449020115686166, rel=1e-12)
    assert e["all:8"]["p_value"] == 0.4072265625  # 1668 of 4096 sign patterns
    assert e["levels_4-5:16"]["p_holm"] == 0.171875  # 2 x 0.0859375
