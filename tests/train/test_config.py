"""Config validation: every error names the field and the allowed range."""

from __future__ import annotations

import pytest

from lensrl.train.config import AlgoConfig, ConfigError, TrainConfig, apply_overrides
from lensrl.train.presets import load_config_file, load_preset, preset_names


@pytest.mark.parametrize(
    ("section", "field", "value", "needle"),
    [
        ("algo", "estimator", "ppo", "algo.estimator"),
        ("algo", "alpha", -1.0, "algo.alpha"),
        ("algo", "d_floor", 1.0, "algo.d_floor"),
        ("batch", "prompts_per_step", 3, "multiple of batch.prompts_per_update"),
        ("batch", "rows_per_micro_batch", 0, "batch.rows_per_micro_batch"),
        ("algo", "aggregation", "sum", "algo.aggregation"),
        ("rollout", "samples_per_prompt", 1, "rollout.samples_per_prompt"),
        ("rollout", "top_p", 0.0, "rollout.top_p"),
        ("rollout", "temperature", 0.0, "rollout.temperature"),
        ("optim", "lr", 0.0, "optim.lr"),
        ("model", "dtype", "fp8", "model.dtype"),
        ("task", "levels", [0, 6], "task.levels"),
        ("run", "name", "a/b", "run.name"),
    ],
)
def test_bad_values_name_the_field(section, field, value, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        TrainConfig.from_dict({section: {field: value}})


def test_defaults_are_the_paper_recipe():
    cfg = TrainConfig()
    assert cfg.rollout.samples_per_prompt == 16
    assert (cfg.batch.prompts_per_step, cfg.batch.prompts_per_update) == (128, 32)
    assert (cfg.algo.clip_low, cfg.algo.clip_high, cfg.algo.kl_coef) == (0.2, 0.2, 0.0)
    assert (cfg.rollout.temperature, cfg.rollout.top_p) == (1.0, 1.0)
    assert (cfg.algo.estimator, cfg.algo.alpha) == ("lens", 0.25)


def test_unknown_keys_and_sections_are_named():
    with pytest.raises(ConfigError, match=r"algo\.alhpa"):
        TrainConfig.from_dict({"algo": {"alhpa": 0.5}})
    with pytest.raises(ConfigError, match="algorithm"):
        TrainConfig.from_dict({"algorithm": {}})


def test_overrides_are_typed_like_the_defaults():
    data = apply_overrides({}, ["algo.alpha=0.5", "run.steps=3", "run.tensorboard=true",
                                "task.levels=[1,2]", "model.init_from=none"])
    cfg = TrainConfig.from_dict(data)
    assert cfg.algo.alpha == 0.5 and cfg.run.steps == 3 and cfg.run.tensorboard is True
    assert cfg.task.levels == [1, 2] and cfg.model.init_from is None
    with pytest.raises(ConfigError, match=r"algo\.alpha=abc: expected a float"):
        apply_overrides({}, ["algo.alpha=abc"])
    with pytest.raises(ConfigError, match="unknown key"):
        apply_overrides({}, ["algo.nope=1"])
    with pytest.raises(ConfigError, match="section.key=value"):
        apply_overrides({}, ["alpha"])


def test_presets_all_validate():
    assert {"smoke", "demo", "smollm2", "paper"} <= set(preset_names())
    for name in preset_names():
        TrainConfig.from_dict(load_preset(name))
    with pytest.raises(ConfigError, match="unknown"):
        load_preset("nope")


def test_yaml_errors_name_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("algo:\n  alpha: [1,\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: line \d+"):
        load_config_file(path)
    with pytest.raises(ConfigError, match="no such file"):
        load_config_file(tmp_path / "missing.yaml")


def test_algo_config_accepts_every_core_estimator():
    from lensrl.core import ESTIMATORS

    for name in ESTIMATORS:
        AlgoConfig(estimator=name)


# --- 0.1's names (issue 16) -------------------------------------------------------------------

OLD = {"model": {"name": "tiny", "size": "nano", "logprob_micro_batch": 8},
       "algo": {"prompts_per_rollout": 4, "prompts_per_update": 2, "micro_batch": 3}}


def test_old_keys_load_under_their_new_names_with_a_warning():
    with pytest.warns(DeprecationWarning, match=r"algo\.micro_batch is now batch\.rows_per_micro"):
        cfg = TrainConfig.from_dict(OLD, source="old.yaml")
    assert cfg.model.name == "nano"  # model: {name: tiny, size: S} is model: {name: S}
    assert (cfg.batch.prompts_per_step, cfg.batch.prompts_per_update) == (4, 2)
    assert (cfg.batch.rows_per_micro_batch, cfg.batch.rows_per_logprob_pass) == (3, 8)
    # a saved config.json of 0.1 resolves to the same config as its 0.2 spelling
    new = {"model": {"name": "nano"}, "batch": {"prompts_per_step": 4, "prompts_per_update": 2,
           "rows_per_micro_batch": 3, "rows_per_logprob_pass": 8}}
    assert cfg == TrainConfig.from_dict(new)


def test_old_key_beside_a_different_new_one_is_an_error_naming_both():
    data = {"algo": {"micro_batch": 3}, "batch": {"rows_per_micro_batch": 5}}
    want = r"run\.yaml: algo\.micro_batch.*batch\.rows_per_micro_batch = 5"
    with pytest.raises(ConfigError, match=want):
        TrainConfig.from_dict(data, source="run.yaml")


def test_set_with_an_old_key_sets_the_new_one():
    with pytest.warns(DeprecationWarning, match="--set algo.micro_batch is now"):
        data = apply_overrides({"algo": {"micro_batch": 9}},
                               ["algo.micro_batch=7", "model.size=small"])
    cfg = TrainConfig.from_dict(data)
    assert cfg.batch.rows_per_micro_batch == 7 and cfg.model.name == "small"


def test_presets_use_only_current_names_and_tiny_models_match_the_policy_presets():
    import warnings

    from lensrl.policy import TINY_PRESETS
    from lensrl.train.config import TINY_MODELS

    for name in preset_names():
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)
            TrainConfig.from_dict(load_preset(name), source=name)
    assert set(TINY_MODELS) == set(TINY_PRESETS)
