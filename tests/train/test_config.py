"""Config validation: every error names the field and the allowed range."""

from __future__ import annotations

import json
import warnings

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
    with pytest.raises(ConfigError, match=r"--set algo\.alpha = 'abc' is invalid: must be a number"):
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


# --- 0.1's names (lensrl.train.migrate) --------------------------------------------------------

OLD = {"model": {"name": "tiny", "size": "nano", "logprob_micro_batch": 8},
       "algo": {"prompts_per_rollout": 4, "prompts_per_update": 2, "micro_batch": 3}}


def renames(call, *args):
    """``call(*args)`` and the messages of the RenamedKeyWarnings it gave (no other warning)."""
    from lensrl.train.migrate import RenamedKeyWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = call(*args)
    assert all(w.category is RenamedKeyWarning for w in caught), caught
    return out, sorted(str(w.message) for w in caught)


def test_old_keys_load_under_their_new_names_with_a_warning():
    cfg, said = renames(TrainConfig.from_dict, OLD, "old.yaml")
    assert said == sorted([
        "old.yaml: algo.prompts_per_rollout is now batch.prompts_per_step",
        "old.yaml: algo.prompts_per_update is now batch.prompts_per_update",
        "old.yaml: algo.micro_batch is now batch.rows_per_micro_batch",
        "old.yaml: model.logprob_micro_batch is now batch.rows_per_logprob_pass",
        "old.yaml: model.size is gone; name the tiny model by its size (model.name: nano)"])
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
    data, said = renames(apply_overrides, {"algo": {"micro_batch": 9}},
                         ["algo.micro_batch=7", "model.size=small"])
    assert said == ["--set algo.micro_batch is now batch.rows_per_micro_batch",
                    "--set model.size is now model.name",
                    "config: algo.micro_batch is now batch.rows_per_micro_batch"]
    cfg = TrainConfig.from_dict(data)
    assert cfg.batch.rows_per_micro_batch == 7 and cfg.model.name == "small"


def test_presets_use_only_current_names():
    for name in preset_names():
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)
            TrainConfig.from_dict(load_preset(name), source=name)


# --- values typed by the schema (lensrl.train.coerce) ---------------------------------------


def test_yaml_values_are_converted_to_the_field_type(tmp_path):
    # YAML 1.1 reads 1e-6 (no dot) as a string; a quoted "10" is still a count
    path = tmp_path / "c.yaml"
    path.write_text('optim: {lr: 1e-6}\nrun: {steps: "10", progress: false}\n'
                    "algo: {eps: 1e-8, alpha: 1}\n")
    cfg = TrainConfig.from_dict(load_config_file(path), source=str(path))
    assert cfg.optim.lr == 1e-6 and isinstance(cfg.optim.lr, float)
    assert cfg.run.steps == 10 and isinstance(cfg.run.steps, int)
    assert cfg.algo.eps == 1e-8 and cfg.algo.alpha == 1.0 and isinstance(cfg.algo.alpha, float)
    assert cfg.run.progress is False


@pytest.mark.parametrize(("section", "key", "value", "wants"), [
    ("rollout", "samples_per_prompt", 4.5, "a whole number"),
    ("rollout", "samples_per_prompt", "four", "a whole number"),
    ("run", "progress", "no", "true or false"),
    ("run", "progress", 1, "true or false"),
    ("optim", "lr", "fast", "a number"),
    ("optim", "lr", True, "a number"),
    ("algo", "kl_coef", float("inf"), "a number"),
    ("task", "levels", "all", "a list of a whole number"),
    ("optim", "betas", [0.9, "x"], "a list of a number"),
])
def test_unconvertible_values_name_key_value_and_type(section, key, value, wants):
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_dict({section: {key: value}}, source="c.yaml")
    msg = str(err.value)
    assert msg.startswith(f"c.yaml: {section}.{key} = {value!r}"), msg
    assert wants in msg


def test_a_runs_config_json_is_a_valid_config(tmp_path):
    cfg = TrainConfig.from_dict({"optim": {"lr": 3e-6}, "algo": {"eps": 1e-6}})
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg.to_dict(), indent=2))
    again = TrainConfig.from_dict(load_config_file(path), source=str(path))
    assert again == cfg


def test_set_values_are_typed_and_none_only_where_allowed():
    data = apply_overrides({}, ["optim.lr=1e-6", "rollout.samples_per_prompt=8",
                                "task.template=null", "optim.betas=[0.8, 0.99]"])
    cfg = TrainConfig.from_dict(data)
    assert (cfg.optim.lr, cfg.rollout.samples_per_prompt) == (1e-6, 8)
    assert cfg.task.template is None and cfg.optim.betas == [0.8, 0.99]
    with pytest.raises(ConfigError, match=r"--set run\.steps = 'none' is invalid"):
        apply_overrides({}, ["run.steps=none"])
    with pytest.raises(ConfigError, match=r"--set run\.tensorboard = 'yes' is invalid: must be true"):
        apply_overrides({}, ["run.tensorboard=yes"])


def test_old_and_new_key_on_the_command_line_conflict():
    with pytest.raises(ConfigError, match=r"algo\.micro_batch=7 \(the old name of "
                       r"batch\.rows_per_micro_batch\) contradicts --set batch\.rows_per_micro_batch=9"):
        renames(apply_overrides, {}, ["batch.rows_per_micro_batch=9", "algo.micro_batch=7"])
    # the same value twice is no contradiction
    data, said = renames(apply_overrides, {}, ["algo.micro_batch=7", "batch.rows_per_micro_batch=7"])
    assert said == ["--set algo.micro_batch is now batch.rows_per_micro_batch"]
    assert data["batch"]["rows_per_micro_batch"] == 7


def test_the_cli_prints_each_rename_once_on_one_line(capsys):
    from lensrl.cli import renamed_keys_shown
    from lensrl.train.migrate import RenamedKeyWarning

    with renamed_keys_shown():
        for _ in range(3):
            TrainConfig.from_dict({"algo": {"micro_batch": 3}}, source="old.yaml")
    err = capsys.readouterr().err.splitlines()
    assert err == ["lensrl: note: old.yaml: algo.micro_batch is now batch.rows_per_micro_batch "
                   "(renamed in 0.2)"]
    assert issubclass(RenamedKeyWarning, DeprecationWarning)


def test_a_field_of_a_type_the_converter_does_not_know_passes_as_given():
    from dataclasses import dataclass, field

    from lensrl.train.config import convert

    @dataclass
    class Section:
        options: dict[str, int] = field(default_factory=dict)
        count: int = 1

    assert convert({"r": 8}, Section, "options", "x.options") == {"r": 8}
    assert convert("3", Section, "count", "x.count") == 3
