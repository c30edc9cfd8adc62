"""The study config: errors name the field; arms resolve to paired TrainConfigs; the plan."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from lensrl.data import ProblemSampler
from lensrl.study import arm_train_config, load_study, run_order, study_from_dict
from lensrl.study.runner import ensure_warmup, format_status
from lensrl.train.config import ConfigError
from lensrl.train.state import load_tasks

from .conftest import micro_dict, write_config


def _with(root: Path, path: str, value: object) -> dict:
    data = copy.deepcopy(micro_dict(root))
    *parents, last = path.split(".")
    target = data
    for p in parents:
        target = target.setdefault(p, {})
    target[last] = value
    return data


@pytest.mark.parametrize(("path", "value", "named"), [
    ("warmup.steps", 0, "warmup.steps"),
    ("warmup.stepz", 3, "warmup.stepz"),
    ("eval.samples", 0, "eval.samples"),
    ("arms.lens.estimator", "lensx", "arms.lens.estimator"),
    ("arms.lens.alpha", -1, "arms.lens.alpha"),
    ("arms.lens.alpha", "H", "arms.lens.alpha"),
    ("arms.lens.seeds", 0, "arms.lens.seeds"),
    ("arms.lens.colour", 1, "arms.lens.colour"),
    ("arms.lens.set", ["algo.alpha=abc"], "arms.lens"),
    ("arms.lens.set", ["algo.nope=1"], "algo.nope"),
    ("train.rollout", {"samples_per_prompt": 1}, "rollout.samples_per_prompt"),
    ("stats.endpoints", ["all"], "stats.endpoints[0]"),
    ("stats.endpoints", ["all:4", "all:5"], "stats.endpoints[1]"),  # k > eval.samples
    ("stats.baseline", "nope", "stats.baseline"),
    ("stats.primary_arm", "grpo", "stats.primary_arm"),
    ("stats.tost_margin", 0, "stats.tost_margin"),
    ("stats.alpha_sweep", ["grpo"], "stats.alpha_sweep"),
    ("pilot.arms", ["nsr"], "pilot.arms"),
    ("colour", 1, "colour"),
])
def test_errors_name_the_field(tmp_path, path, value, named):
    with pytest.raises(ConfigError, match=named.replace("[", r"\[").replace(".", r"\.")):
        study_from_dict(_with(tmp_path, path, value), source="study.yaml")


def test_yaml_errors_name_the_file_and_line(tmp_path):
    bad = tmp_path / "study.yaml"
    bad.write_text("arms:\n  grpo: {estimator: grpo\n")
    with pytest.raises(ConfigError, match=r"study\.yaml: line \d+"):
        load_study(bad)


def test_set_overrides_and_names_bad_keys(tmp_path):
    path = write_config(tmp_path, micro_dict(tmp_path))
    cfg = load_study(path, ["warmup.steps=7", "train.run.steps=3", f"out={tmp_path / 'o'}"])
    assert cfg.warmup.steps == 7 and cfg.rl_steps == 3 and cfg.out_dir == tmp_path / "o"
    with pytest.raises(ConfigError, match="--set 'nope.x=1'"):
        load_study(path, ["nope.x=1"])


def test_arm_configs_share_all_but_the_method_and_pair_the_data(micro_config):
    cfg = micro_config
    grpo, lens = arm_train_config(cfg, "grpo", 1), arm_train_config(cfg, "lens", 1)
    a, b = grpo.to_dict(), lens.to_dict()
    differ = {f"{s}.{k}" for s in a for k in a[s] if a[s][k] != b[s][k]}
    assert differ == {"algo.estimator", "run.name", "run.run_dir"}  # alpha 0.25 = the default
    assert grpo.model.init_from == str(cfg.warmup_dir) and grpo.run.seed == 1
    assert grpo.run.eval_every == 0

    def order(tc, n=40):
        return [p.id for p in ProblemSampler(load_tasks(tc.task)[0], tc.run.seed).take(n)]

    assert order(grpo) == order(lens)  # seed 1 sees the same problems in both arms
    assert order(grpo) != order(arm_train_config(cfg, "grpo", 0))


def test_order_is_pilot_first_then_interleaved_by_seed(micro_config):
    assert [(r.arm, r.seed, r.pilot) for r in run_order(micro_config)] == [
        ("grpo", 0, True), ("lens", 0, True), ("grpo", 1, False), ("lens", 1, False)]
    data = micro_dict(Path(micro_config.out).parent)
    data["arms"]["nsr"] = {"estimator": "nsr", "seeds": 3}
    data["pilot"]["seeds"] = 2
    order = [(r.arm, r.seed) for r in run_order(study_from_dict(data))]
    assert order == [("grpo", 0), ("lens", 0), ("grpo", 1), ("lens", 1),  # the pilot
                     ("nsr", 0), ("nsr", 1), ("nsr", 2)]


def test_alpha_g_is_the_group_size(tmp_path):
    data = micro_dict(tmp_path)
    data["arms"]["lens_g"] = {"estimator": "lens", "alpha": "G", "seeds": 1}
    data["arms"]["mixed"] = {"estimator": "lens_mixed_only", "seeds": 1}
    cfg = study_from_dict(data)
    assert arm_train_config(cfg, "lens_g", 0).algo.alpha == 4.0  # smoke: G = 4
    from lensrl.study.config import resolve_alpha

    assert resolve_alpha(cfg.arms["mixed"], cfg.base_train()) == 0.0


def test_dry_run_prints_the_plan_without_running(micro_config, capsys):
    from lensrl.cli import main

    text = format_status(micro_config)
    assert "runs: 4 in 2 arms; done 0" in text
    assert "grpo/s0, lens/s0, grpo/s1, lens/s1" in text
    assert "estimated time: unknown" in text
    assert not micro_config.out_dir.exists()
    path = Path(micro_config.source)
    assert main(["study", "--config", str(path), "--dry-run"]) == 0
    assert "runs: 4 in 2 arms" in capsys.readouterr().out
    assert main(["study", "--config", str(path), "--dry-run", "--set", "warmup.steps=0"]) == 2
    assert "warmup.steps" in capsys.readouterr().err


def test_changed_warmup_is_refused(micro_config, tmp_path):
    ensure_warmup(micro_config)
    changed = load_study(Path(micro_config.source), ["warmup.lr=0.01"])
    with pytest.raises(ConfigError, match="lr"):
        ensure_warmup(changed)


def test_shipped_config_is_valid():
    cfg = load_study(Path(__file__).parents[2] / "configs" / "study.yaml")
    assert cfg.arms["lens_alphaG"].estimator == "lens"
    assert arm_train_config(cfg, "lens_alphaG", 0).algo.alpha == 16.0
    assert cfg.stats.endpoints == ["all:8", "levels_4-5:16"]
    assert all(cfg.arms[a].seeds >= 12 for a in ("grpo", "lens"))
    assert all(s.seeds >= 8 for s in cfg.arms.values())
