"""The resume rules of lensrl.train.state.open_run_dir, on config.json files alone (no model)."""

from __future__ import annotations

import json

import pytest

from lensrl.train.config import ConfigError, TrainConfig
from lensrl.train.state import open_run_dir


def _saved(run_dir, data):
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(data))
    (run_dir / "metrics.jsonl").write_text('{"step": 1}\n')


def test_resume_of_an_older_run_reads_missing_sections_as_defaults_and_old_names(tmp_path):
    """A run saved by 0.1 (no verify section, batch settings under algo/model, model.size)
    resumes under 0.2 when its settings are the same."""
    cfg = TrainConfig.from_dict({"model": {"name": "nano"},
                                 "batch": {"prompts_per_step": 4, "prompts_per_update": 2}})
    old = cfg.to_dict()
    del old["verify"], old["batch"]
    old["model"] = {**old["model"], "name": "tiny", "size": "nano", "logprob_micro_batch": 256}
    old["algo"] = {**old["algo"], "prompts_per_rollout": 4, "prompts_per_update": 2,
                   "micro_batch": 64}
    _saved(tmp_path, old)
    with pytest.warns(DeprecationWarning):
        open_run_dir(cfg, tmp_path, resume=True)
    assert json.loads((tmp_path / "config.json").read_text()) == cfg.to_dict()  # rewritten in 0.2 names


def test_resume_with_other_settings_names_them(tmp_path):
    cfg = TrainConfig()
    _saved(tmp_path, {**cfg.to_dict(), "algo": {**cfg.to_dict()["algo"], "alpha": 1.0}})
    with pytest.raises(ConfigError, match=r"algo\.alpha differ from .*config\.json"):
        open_run_dir(cfg, tmp_path, resume=True)
    cfg.run.steps += 5  # a resumable change
    with pytest.raises(ConfigError, match="already holds a run"):
        open_run_dir(cfg, tmp_path, resume=False)


def test_a_moved_run_folder_resumes_its_path_is_not_a_setting(tmp_path):
    old, new = tmp_path / "old", tmp_path / "synced" / "new"
    cfg = TrainConfig.from_dict({"run": {"run_dir": str(old)}})
    _saved(new, cfg.to_dict())  # config.json still names the folder it was trained in
    moved = TrainConfig.from_dict({"run": {"run_dir": str(new)}})
    open_run_dir(moved, new, resume=True)
    assert json.loads((new / "config.json").read_text())["run"]["run_dir"] == str(new)
