"""End-to-end trainer behaviour on the `smoke` preset (a nano model, a few steps)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lensrl.train.config import TrainConfig
from lensrl.train.presets import load_preset
from lensrl.train.trainer import TrainingError, train


def smoke(tmp_path: Path, **sections) -> TrainConfig:
    data = load_preset("smoke")
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    data.setdefault("run", {})["run_dir"] = str(tmp_path / "run")
    return TrainConfig.from_dict(data)


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_run_folder_contract(tmp_path):
    run_dir = train(smoke(tmp_path, run={"steps": 2}))
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["algo"]["estimator"] == "lens" and cfg["run"]["steps"] == 2
    metrics = rows(run_dir / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [1, 2]
    for key in ("reward/mean", "groups/frac_negative", "groups/frac_mixed", "lens/D_mean",
                "lens/adv_share_negative", "loss/policy", "clip/frac", "grad/norm",
                "completions/len_mean", "completions/frac_truncated", "time/rollout_s",
                "time/update_s", "time/step_s"):
        assert key in metrics[0], key
    samples = rows(run_dir / "samples.jsonl")
    assert samples and {"prompt", "completion", "reward", "advantage", "step"} <= set(samples[0])
    assert (run_dir / "checkpoints" / "step_2" / "model" / "model.safetensors").is_file()
    assert (run_dir / "checkpoints" / "step_2" / "trainer_state.pt").is_file()


def test_existing_run_needs_resume(tmp_path):
    cfg = smoke(tmp_path, run={"steps": 1})
    train(cfg)
    with pytest.raises(ValueError, match="--resume"):
        train(cfg)


def test_resume_refuses_changed_settings(tmp_path):
    train(smoke(tmp_path, run={"steps": 1}))
    with pytest.raises(ValueError, match=r"algo\.alpha"):
        train(smoke(tmp_path, run={"steps": 2}, algo={"alpha": 0.5}), resume=True)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "lensrl", "train", "--preset", "smoke", *args]


def _strip_time(metrics: list[dict]) -> list[dict]:
    return [{k: v for k, v in m.items() if not k.startswith("time/")} for m in metrics]


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.slow  # three `lensrl train` subprocesses, one killed
def test_sigkill_and_resume_matches_uninterrupted_run(tmp_path, dtype):
    """The issue's contract: 12 smoke steps, checkpoint every 3, SIGKILL after step 6,
    resume, and every metric (times aside) equals an uninterrupted run's, step for step; in
    bf16 compute too (the fp32 masters and optimizer state make the resume exact)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    full, cut = tmp_path / "full", tmp_path / "cut"
    common = ["--steps", "12", "--checkpoint-every", "3", "--no-progress",
              "--set", f"model.dtype={dtype}"]
    subprocess.run(_cli("--run-dir", str(full), *common), check=True, env=env,
                   capture_output=True)
    proc = subprocess.Popen(_cli("--run-dir", str(cut), *common), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = cut / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 7:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(metrics.read_text().splitlines()) < 12, "run finished before it could be killed"
    subprocess.run(_cli("--run-dir", str(cut), *common, "--resume"), check=True, env=env,
                   capture_output=True)
    a, b = _strip_time(rows(full / "metrics.jsonl")), _strip_time(rows(cut / "metrics.jsonl"))
    assert [m["step"] for m in b] == list(range(1, 13))
    assert a == b


def test_nonfinite_loss_skips_update_and_keeps_weights(tmp_path, monkeypatch):
    import lensrl.train.trainer as trainer_mod

    real = trainer_mod.policy_loss

    def nan_loss(*args, **kwargs):
        loss, metrics = real(*args, **kwargs)
        return loss * float("nan"), {**metrics, "loss/policy": math.nan}

    monkeypatch.setattr(trainer_mod, "policy_loss", nan_loss)
    cfg = smoke(tmp_path, run={"steps": 1}, optim={"max_bad_updates": 5})
    run_dir = train(cfg)
    m = rows(run_dir / "metrics.jsonl")[0]
    assert m["opt/skipped_updates"] == 2.0  # two updates per smoke step, both skipped
    from lensrl.train.state import build_state

    fresh = build_state(cfg).model.state_dict()
    from safetensors.torch import load_file

    saved = load_file(run_dir / "checkpoints" / "step_1" / "model" / "model.safetensors")
    for name, tensor in saved.items():
        assert torch.equal(tensor, fresh[name]), name
    with pytest.raises(TrainingError, match="max_bad_updates"):
        train(smoke(tmp_path / "again", run={"steps": 2}, optim={"max_bad_updates": 3}))


@pytest.mark.parametrize("estimator", ["grpo", "nsr", "lens_mixed_only"])
def test_other_estimators_and_dynamic_sampling_run(tmp_path, estimator):
    run_dir = train(smoke(tmp_path, run={"steps": 1, "checkpoint_every": 0},
                          algo={"estimator": estimator, "dynamic_sampling": True,
                                "max_resample_rounds": 1}))
    m = rows(run_dir / "metrics.jsonl")[0]
    assert "dapo/kept_frac" in m and 0.0 <= m["dapo/kept_frac"] <= 1.0


@pytest.mark.slow  # `lensrl train` in subprocesses
def test_cli_reports_bad_flags(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(_cli("--set", "algo.alpha=abc", "--run-dir", str(tmp_path / "x")),
                         env=env, capture_output=True, text=True)
    assert out.returncode == 2 and "algo.alpha" in out.stdout + out.stderr
    out = subprocess.run(_cli("--steps", "many"), env=env, capture_output=True, text=True)
    assert out.returncode == 2 and "--steps" in out.stderr
