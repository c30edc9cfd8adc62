"""lensrl.study.records: the committed per-run data the study's tables are computed from."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from lensrl.eval.passk import pass_at_k_per_problem
from lensrl.study.records import (
    ProblemCounts,
    RunRecord,
    legacy_records,
    load_study_data,
    save_record,
    write_study_data,
)

COMMITTED = Path(__file__).resolve().parents[2] / "results" / "study" / "first" / "summary.json"


def _counts(rng: np.random.Generator, m: int = 30) -> ProblemCounts:
    return ProblemCounts(ids=tuple(f"p{j}" for j in range(m)),
                         levels=tuple(1 + j % 5 for j in range(m)),
                         n=np.full(m, 16), c=rng.integers(0, 17, size=m))


def test_values_are_mean_pass_at_k_over_each_bucket():
    counts = _counts(np.random.default_rng(0))
    values = counts.values()
    per = pass_at_k_per_problem(counts.n, counts.c, 4)
    levels = np.array(counts.levels)
    assert values["all"][4] == pytest.approx(per.mean())
    assert values["level_5"][4] == pytest.approx(per[levels == 5].mean())
    assert values["levels_4-5"][16] == pytest.approx(
        pass_at_k_per_problem(counts.n, counts.c, 16)[levels >= 4].mean())


def test_records_round_trip_and_the_same_records_give_the_same_bytes(tmp_path):
    rng = np.random.default_rng(1)
    recs = [RunRecord(arm=a, seed=s, step=100, values=(c := _counts(rng)).values(), problems=c,
                      metrics={"frac_negative": 0.4}, train_s=3.0, eval_s=1.0,
                      config={"run": {"seed": s}}, provenance={"commit": "abc"})
            for a in ("lens", "grpo") for s in (1, 0)]
    path = write_study_data(tmp_path, recs)
    first = path.read_bytes()
    back = load_study_data(tmp_path)
    assert list(back.records) == [("grpo", 0), ("grpo", 1), ("lens", 0), ("lens", 1)]
    for r in recs:
        got = back.records[r.arm, r.seed]
        assert got.values == r.values and got.metrics == r.metrics and got.config == r.config
        assert np.array_equal(got.problems.c, r.problems.c) and got.problems.ids == r.problems.ids
    # one table of problem ids for every run that evaluated the same problems
    assert len(json.loads(gzip.decompress(first))["problem_sets"]) == 1
    write_study_data(tmp_path, back.records.values())
    assert path.read_bytes() == first
    assert list(back.arm("lens")) == [0, 1]


def test_a_damaged_records_file_is_an_error_naming_it(tmp_path):
    (tmp_path / "runs.json.gz").write_bytes(b"not gzip")
    with pytest.raises(ValueError, match="runs.json.gz: not a gzip JSON"):
        load_study_data(tmp_path)
    (tmp_path / "runs.json.gz").write_bytes(gzip.compress(json.dumps(
        {"format": 1, "problem_sets": {}, "runs": [{"arm": "grpo"}]}).encode()))
    with pytest.raises(ValueError, match=r"runs\[0\]: a malformed run record"):
        load_study_data(tmp_path)
    assert load_study_data(tmp_path / "none").records == {}


def test_the_first_studys_per_seed_values_are_imported_consistently():
    summary = json.loads(COMMITTED.read_text())
    recs = {(r.arm, r.seed): r for r in legacy_records(summary)}
    seeds = {arm: len(m["seeds"]) for arm, m in summary["methods"].items()}
    assert {a: sum(1 for (x, _) in recs if x == a) for a in seeds} == seeds
    cell = summary["paired"]["lens_vs_grpo"]["overall"]["pass@8"]["per_seed"]
    for side, arm in (("method", "lens"), ("baseline", "grpo")):
        for e in cell[side]:
            assert recs[arm, e["seed"]].values["all"][8] == e["value"]
    # an arm's mean over seeds is the summary's own per-arm mean
    for arm, m in summary["methods"].items():
        got = np.mean([r.values["levels_4-5"][16] for (a, _), r in recs.items() if a == arm])
        assert got == pytest.approx(m["by_level"]["levels_4-5"]["pass@16"]["mean"], abs=1e-12)
    assert all(r.legacy and "2026-12-02" in r.provenance["source"] for r in recs.values())


def test_a_rerun_replacing_a_first_study_record_says_whether_it_reproduced(tmp_path):
    old = RunRecord(arm="grpo", seed=0, step=100, values={"all": {1: 0.5, 8: 0.75}},
                    provenance={"source": "first"})
    write_study_data(tmp_path, [old])
    c = ProblemCounts(ids=("a", "b"), levels=(1, 2), n=np.array([8, 8]), c=np.array([4, 4]))
    new = RunRecord(arm="grpo", seed=0, step=100, values={"all": {1: 0.5, 8: 0.70}}, problems=c)
    save_record(tmp_path, new)
    got = load_study_data(tmp_path).records["grpo", 0]
    assert got.provenance["replaced"] == {"source": "first", "max_abs_diff": pytest.approx(0.05)}
    assert got.problems is not None


def test_the_report_is_rebuilt_from_records_alone(micro_config):
    """No run folder exists: every record is rebuilt into one, and lensrl report reads those."""
    from lensrl.study import arm_train_config, summarize
    from lensrl.study.report import write_report

    rng = np.random.default_rng(2)
    recs = []
    for arm in ("grpo", "lens"):
        for seed in (0, 1):
            c = _counts(rng)
            series = [{"step": s, "reward/mean": 0.1 * s, "groups/frac_negative": 0.4}
                      for s in (1, 2)]
            recs.append(RunRecord(arm=arm, seed=seed, step=2, values=c.values(), problems=c,
                                  series=series, sampling={"samples": 16},
                                  config=arm_train_config(micro_config, arm, seed).to_dict()))
    for seed in (0, 1):  # the warm-up, scored with each seed's sampling
        c = _counts(rng)
        recs.append(RunRecord(arm="step0", seed=seed, step=0, values=c.values(), problems=c,
                              sampling={"samples": 16},
                              config=arm_train_config(micro_config, "grpo", seed).to_dict()))
    write_study_data(micro_config.results, recs)
    assert not Path(micro_config.out).exists()
    summarize(micro_config, report=False)  # summary.json, which the report's first table reads
    html = write_report(micro_config)
    md = (html.parent / "report.md").read_text()
    assert "grpo-seed1" in md and "lens-seed0" in md
    # it opens with what RL did: each arm's change from the warm-up, paired by seed
    assert md.index("What RL did") < md.index("Primary endpoints")
    summary = json.loads((Path(micro_config.results) / "summary.json").read_text())
    diff = summary["from_step0"]["lens"]["overall"]["pass@1"]["diff"]
    assert f"{100 * diff:+.2f}" in md.split("What RL did")[1].split("Primary endpoints")[0]
    assert (html.parent / "training_curves.png").stat().st_size > 1000


def test_a_first_study_record_cannot_be_rebuilt_into_a_run_folder(tmp_path):
    from lensrl.study.records import materialize

    old = RunRecord(arm="grpo", seed=0, step=100, values={"all": {1: 0.5}})
    with pytest.raises(ValueError, match="grpo seed 0: a first-study record has no per-problem"):
        materialize(old, tmp_path / "x")
