"""The ``verify`` config section: strictness for training and evaluation, and the timeout."""

from __future__ import annotations

import functools

import pytest

from lensrl.train.config import ConfigError, TrainConfig, VerifyConfig, apply_overrides


def test_defaults() -> None:
    cfg = TrainConfig()
    assert (cfg.verify.strict_train, cfg.verify.strict_eval, cfg.verify.timeout) == (
        True, False, 5.0)
    assert cfg.to_dict()["verify"] == {"strict_train": True, "strict_eval": False, "timeout": 5.0}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"timeout": 0}, "verify.timeout = 0 is invalid"),
        ({"timeout": -1.0}, "verify.timeout"),
        ({"timeout": float("nan")}, "verify.timeout"),
        ({"timeout": 601}, "verify.timeout"),
        ({"timeout": "5"}, "verify.timeout"),
        ({"strict_train": "yes"}, "verify.strict_train = 'yes' is invalid: must be true or false"),
        ({"strict_eval": 1}, "verify.strict_eval"),
    ],
)
def test_bad_values_name_the_field(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        VerifyConfig(**values)  # type: ignore[arg-type]


def test_from_dict_and_overrides() -> None:
    data = apply_overrides({}, ["verify.timeout=2.5", "verify.strict_eval=true"])
    cfg = TrainConfig.from_dict(data)
    assert cfg.verify == VerifyConfig(strict_train=True, strict_eval=True, timeout=2.5)
    with pytest.raises(ConfigError, match="verify.strict"):
        TrainConfig.from_dict({"verify": {"strict": True}})
    with pytest.raises(ConfigError, match="verify.timeout"):
        TrainConfig.from_dict({"verify": {"timeout": 0}})


def test_eval_cli_uses_the_runs_settings() -> None:
    from lensrl.eval.cli import _verifier
    from lensrl.train.config import TrainConfig

    # lensrl eval reads config.json through TrainConfig.from_dict, as here
    got = _verifier(TrainConfig.from_dict({"verify": {"strict_eval": True, "timeout": 2.0}}))
    assert isinstance(got, functools.partial)
    assert got.keywords == {"strict": True, "timeout": 2.0}
    old_run = _verifier(TrainConfig.from_dict({}))  # saved before the section existed: defaults
    assert old_run.keywords == {"strict": False, "timeout": 5.0}
