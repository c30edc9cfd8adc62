"""`lensrl sft`: a two-step warm-up writes a model folder that training can start from."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from lensrl.policy import load_pretrained
from lensrl.train.config import ConfigError
from lensrl.train.sft import SFTConfig, sft


def test_two_steps_write_a_loadable_model(tmp_path, one_thread):
    out = tmp_path / "warm"
    summary = sft(SFTConfig(size="nano", steps=2, batch_size=4, train_problems=16,
                            dtype="float32"), out)
    assert summary["steps"] == 2 and math.isfinite(summary["final_loss"])
    assert json.loads((out / "sft.json").read_text())["config"]["size"] == "nano"
    model, tokenizer = load_pretrained(out)
    assert model.config.num_hidden_layers == 2 and tokenizer.eos_token == "<eos>"


def test_bad_settings_name_the_field():
    with pytest.raises(ConfigError, match=r"sft\.steps"):
        SFTConfig(steps=0)
    with pytest.raises(ConfigError, match=r"sft\.dtype"):
        SFTConfig(dtype="float16")


@pytest.mark.slow  # `lensrl sft` in subprocesses
def test_cli(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "lensrl", "sft", "--size", "nano", "--batch-size", "4"]
    out = subprocess.run([*cmd, "--out", str(tmp_path / "m"), "--steps", "2"], env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "sft: 2 steps" in out.stdout and (tmp_path / "m" / "model.safetensors").is_file()
    out = subprocess.run([*cmd, "--out", str(tmp_path / "n"), "--lr", "-1"], env=env,
                         capture_output=True, text=True)
    assert out.returncode == 2 and "argument --lr: -1 is out of range" in out.stderr
    assert not (tmp_path / "n").exists()
