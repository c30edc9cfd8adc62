"""The study summary from records alone, through the one statistics engine (lensrl.compare).

Records are made by hand (lensrl.study.records' RunRecord and ProblemCounts), so every expected
number is computed here from the same per-seed values with scipy or the engine's own functions.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import lensrl.compare.stats as ss
from lensrl.study.records import STEP0, ProblemCounts, RunRecord, StudyData
from lensrl.study.summary import build_summary, seed_plan
from lensrl.study.tables import render

SEEDS = 8
IDS = tuple(f"p{j}" for j in range(40))
LEVELS = tuple((1, 2, 4, 5)[j % 4] for j in range(40))


def _record(arm: str, seed: int, rate: np.ndarray, rng: np.random.Generator, *,
            counts: bool = True) -> RunRecord:
    c = rng.binomial(4, np.clip(rate, 0, 1))
    problems = ProblemCounts(ids=IDS, levels=LEVELS, n=np.full(40, 4), c=c)
    return RunRecord(arm=arm, seed=seed, step=2, values=problems.values(),
                     problems=problems if counts else None,
                     metrics={"adv_share_negative": 0.01 if arm == "lens" else 0.0,
                              "frac_negative": 0.4, "frac_negative_step1": 0.3 + 0.01 * seed},
                     train_s=3.0, eval_s=1.0)


def study_data(effect: float, seed: int = 0, *, counts: bool = True, step0: bool = True,
               seeds: int = SEEDS) -> StudyData:
    """grpo and lens over ``seeds`` paired seeds (a shift per seed, shared by the arms), lens
    better by ``effect`` in correct rate, and the warm-up (step0) below both."""
    rng = np.random.default_rng(seed)
    records = {}
    for s in range(seeds):
        shift = rng.normal(0, 0.1)
        for arm, add in (("grpo", 0.0), ("lens", effect), (STEP0, -0.15)):
            if arm == STEP0 and not step0:
                continue
            rate = 0.45 + shift + add + rng.normal(0, 0.01, size=40)
            records[arm, s] = _record(arm, s, rate, rng, counts=counts)
    return StudyData(records, Path("runs.json.gz"))


def _cells(s):
    for name, block in s["paired"].items():
        for bucket, table in [("all", block["overall"]), *block["by_level"].items()]:
            for key, cell in table.items():
                yield name, bucket, int(key[5:]), cell


def test_a_real_effect_is_found_with_the_engines_numbers(micro_config):
    cfg = micro_config
    data = study_data(0.25)
    s = build_summary(cfg, data)
    cell = s["paired"]["lens_vs_grpo"]["overall"]["pass@4"]
    d = np.array([data.records["lens", i].values["all"][4] - data.records["grpo", i].values["all"][4]
                  for i in range(SEEDS)])
    assert cell["per_seed_diff"] == pytest.approx(d.tolist())
    assert cell["diff"] == pytest.approx(d.mean())
    ref = stats.t.interval(0.95, SEEDS - 1, loc=d.mean(), scale=stats.sem(d))
    assert cell["ci95"] == pytest.approx(list(ref))
    assert cell["p_value"] == pytest.approx(float(ss.sign_flip_p(d)))
    assert cell["p_value"] < 0.05
    assert cell["direction"] == "higher"
    primary = s["primary"]["endpoints"][0]
    assert primary["endpoint"] == "all:4" and primary["p_holm"] < 0.05 and primary["significant"]
    assert primary["tost"]["equivalent"] is False
    m = s["methods"]["grpo"]["overall"]["pass@4"]
    grpo = [data.records["grpo", i].values["all"][4] for i in range(SEEDS)]
    assert m["mean"] == pytest.approx(np.mean(grpo)) and m["sd_seeds"] == pytest.approx(
        np.std(grpo, ddof=1))
    assert s["cost"]["lens"]["train_s"] == 3.0 * SEEDS and s["cost"]["lens"]["eval_s"] == SEEDS
    # the all-wrong share at step 1: one value per seed (the mean over its arms), t over seeds
    neg = s["setting"]["frac_negative_at_step_1"]
    assert neg["seeds"] == SEEDS and neg["runs"] == 2 * SEEDS
    per_seed = [0.3 + 0.01 * i for i in range(SEEDS)]
    assert neg["ci95"] == pytest.approx(list(stats.t.interval(
        0.95, SEEDS - 1, loc=np.mean(per_seed), scale=stats.sem(per_seed))))


def test_problem_level_extras_only_where_both_arms_have_counts(micro_config):
    with_counts = build_summary(micro_config, study_data(0.0, 1))
    cell = with_counts["paired"]["lens_vs_grpo"]["overall"]["pass@1"]  # jackknife: k < n
    lo, hi = cell["ci_problems"]
    assert lo < hi and cell["var_split"]["method"]["eval_noise"] > 0
    legacy = build_summary(micro_config, study_data(0.0, 1, counts=False))
    old = legacy["paired"]["lens_vs_grpo"]["overall"]["pass@1"]
    assert old["ci_problems"] is None and old["var_split"] is None
    # the seed-level numbers need the per-seed values only: the same either way
    for key in ("diff", "ci95", "p_value", "p_holm", "mde", "tost"):
        assert old[key] == cell[key], key


def test_every_cell_is_in_one_family_and_significant_means_adjusted_p_below_alpha(micro_config):
    cfg = micro_config
    s = build_summary(cfg, study_data(0.25, 2))
    fam = s["setting"]["families"]
    endpoints = set(cfg.stats.parsed_endpoints())
    cells = list(_cells(s))
    roles = {role: [c for *_, c in cells if c["role"] == role]
             for role in ("primary", "secondary", "exploratory")}
    # one comparison (lens vs grpo): both endpoints are primary, no secondary family
    assert len(roles["primary"]) == fam["primary"]["size"] == len(endpoints)
    assert len(roles["secondary"]) == fam["secondary"]["size"] == 0
    assert len(roles["exploratory"]) == fam["exploratory"]["size"] == len(cells) - len(endpoints)
    for *_, c in cells:
        adjusted = c["p_holm"] if c["role"] == "primary" else c["q_bh"]
        assert c["significant"] == (adjusted < cfg.stats.alpha)
    q = ss.bh([c["p"] for c in roles["exploratory"]])
    assert [c["q_bh"] for c in roles["exploratory"]] == pytest.approx(q.tolist())


def test_the_secondary_family_is_the_endpoints_of_the_other_comparisons(micro_config):
    cfg = micro_config
    cfg.arms["nsr"] = type(cfg.arms["grpo"])(name="nsr", estimator="nsr", seeds=SEEDS)
    cfg.stats.comparisons = [["lens", "nsr"]]
    data = study_data(0.0, 3)
    for i in range(SEEDS):
        r = data.records["grpo", i]
        data.records["nsr", i] = RunRecord(arm="nsr", seed=i, step=2, values={
            b: {k: v - 0.05 for k, v in t.items()} for b, t in r.values.items()})
    s = build_summary(cfg, data)
    fam = s["setting"]["families"]
    # 2 endpoints x (nsr vs grpo, lens vs nsr): the primary comparison is not in it
    assert fam["secondary"]["size"] == 4 and sorted(fam["secondary"]["cells"]) == sorted(
        f"{n} {b}:{k}" for n in ("nsr_vs_grpo", "lens_vs_nsr") for b, k in
        cfg.stats.parsed_endpoints())
    sec = [c for n, b, k, c in _cells(s) if c["role"] == "secondary"]
    assert [c["q_bh"] for c in sec] == pytest.approx(ss.bh([c["p"] for c in sec]).tolist())
    tables = render(s)
    assert "## Secondary (declared): 4 cells" in tables
    assert "| `nsr_vs_grpo` | all:4 | 8 |" in tables


def test_step0_is_each_arms_change_paired_by_seed(micro_config):
    data = study_data(0.0, 4)
    s = build_summary(micro_config, data)
    cell = s["from_step0"]["lens"]["overall"]["pass@4"]
    d = [data.records["lens", i].values["all"][4] - data.records[STEP0, i].values["all"][4]
         for i in range(SEEDS)]
    assert cell["per_seed_diff"] == pytest.approx(d) and cell["ci95"][0] > 0
    assert cell["role"] is None and cell["significant"] is None  # descriptive, no family
    warm = [data.records[STEP0, i].values["all"][4] for i in range(SEEDS)]
    assert s["step0"]["seeds"] == list(range(SEEDS))
    assert s["step0"]["overall"]["pass@4"]["mean"] == pytest.approx(np.mean(warm))
    tables = render(s)
    assert "| step 0 (warm-up) | 8 |" in tables
    lens_row = next(line for line in tables.splitlines() if line.startswith("| `lens` |"))
    assert f"{100 * cell['diff']:+.2f} [" in lens_row
    none = render(build_summary(micro_config, study_data(0.0, 4, step0=False)))
    assert "the warm-up was not scored" in none


def test_mde_and_seeds_needed_respect_the_sign_flip_floor(micro_config):
    cfg = micro_config
    s = build_summary(cfg, study_data(0.0, 5, seeds=4))
    cell = s["paired"]["lens_vs_grpo"]["overall"]["pass@4"]
    assert cell["p_min"] == 0.125 and cell["mde"] is None  # 4 pairs cannot reach 0.05
    mde = s["mde"]["all:4"]
    assert mde["power_at_target"] is None and mde["power_at_target_holm"] is None
    sd = mde["sd_diff"]
    assert mde["seeds_needed"] == ss.seeds_needed(sd, cfg.stats.target_diff, paired=True)
    assert mde["seeds_needed"] >= 6  # 5 pairs: p >= 1/16 > 0.05
    assert "too few pairs" in render(s)


def test_power_after_holm_is_at_alpha_over_the_number_of_primaries(micro_config):
    cfg = micro_config
    s = build_summary(cfg, study_data(0.0, 6))
    cell = s["paired"]["lens_vs_grpo"]["overall"]["pass@4"]
    mde = s["mde"]["all:4"]
    assert mde["holm_alpha"] == cfg.stats.alpha / 2
    assert mde["power_at_target_holm"] == pytest.approx(
        ss.t_power(cfg.stats.target_diff, cell["se"], cell["df"], alpha=cfg.stats.alpha / 2))
    assert mde["power_at_target_holm"] < mde["power_at_target"]
    assert s["primary"]["endpoints"][0]["power_at_target_holm"] == mde["power_at_target_holm"]


def test_seed_plan_reads_the_records(micro_config, tmp_path):
    from lensrl.study.records import write_study_data

    cfg = micro_config
    assert "needs 2 paired seeds" in seed_plan(cfg)[0]
    data = study_data(0.0, 7)
    write_study_data(cfg.results, data.records.values())
    line = seed_plan(cfg)[0]
    d = [data.records["lens", i].values["all"][4] - data.records["grpo", i].values["all"][4]
         for i in range(SEEDS)]
    need = ss.seeds_needed(float(np.std(d, ddof=1)), cfg.stats.target_diff, paired=True)
    assert line.startswith("seed plan all:4:") and f"-> {need} seeds" in line
    assert math.isfinite(float(line.split("differences ")[1].split(" pp")[0]))
