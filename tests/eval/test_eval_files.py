"""Evaluations of one checkpoint never overwrite each other: same settings replace (a rerun),
other settings are refused unless --overwrite, and --name keeps a second one beside it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lensrl.eval import build_result
from lensrl.runs import EvalExistsError, eval_steps, read_eval, write_eval


def result(samples: int, c: int = 1) -> dict:
    records = [{"id": f"p{i}", "level": 1, "subject": None, "n": samples, "c": c, "unjudged": 0}
               for i in range(3)]
    return build_result(records, sampling={"samples": samples, "temperature": 1.0}, ks=[1],
                        resamples=50)


def test_same_settings_replace_other_settings_refused(tmp_path):
    path = write_eval(tmp_path, 5, result(4, c=1))
    write_eval(tmp_path, 5, result(4, c=2))  # a rerun with the same settings
    assert read_eval(tmp_path, 5)["problems"][0]["c"] == 2
    with pytest.raises(EvalExistsError, match=r"5\.json.*sampling.*--name.*--overwrite"):
        write_eval(tmp_path, 5, result(8))
    assert read_eval(tmp_path, 5)["sampling"]["samples"] == 4  # untouched
    write_eval(tmp_path, 5, result(8), overwrite=True)
    assert json.loads(path.read_text())["sampling"]["samples"] == 8


def test_named_evaluations_live_beside(tmp_path):
    write_eval(tmp_path, 5, result(4))
    named = write_eval(tmp_path, 5, result(8), name="n8")
    assert named.name == "5.n8.json"
    assert eval_steps(tmp_path) == [5] and eval_steps(tmp_path, "n8") == [5]
    assert read_eval(tmp_path, name="n8")["sampling"]["samples"] == 8
    assert read_eval(tmp_path)["sampling"]["samples"] == 4
    with pytest.raises(ValueError, match="letters, digits"):
        write_eval(tmp_path, 5, result(4), name="../x")


@pytest.mark.slow  # `lensrl train` and `lensrl eval` in subprocesses
def test_cli_refuses_other_settings_before_the_work(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    run_dir = tmp_path / "run"
    subprocess.run([sys.executable, "-m", "lensrl", "train", "--preset", "smoke", "--run-dir",
                    str(run_dir), "--steps", "2", "--set", "run.eval_every=2",
                    "--set", "run.eval_samples=2", "--set", "model.dtype=float32"],
                   env=env, check=True, capture_output=True)
    before = (run_dir / "eval" / "2.json").read_text()
    cmd = [sys.executable, "-m", "lensrl", "eval", "--run-dir", str(run_dir), "--samples", "3"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert out.returncode == 2 and "2.json holds an evaluation with other settings" in out.stderr
    assert "pass@" not in out.stdout  # refused before evaluating
    assert (run_dir / "eval" / "2.json").read_text() == before
    out = subprocess.run([*cmd, "--name", "s3"], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert read_eval(run_dir, 2, "s3")["sampling"]["samples"] == 3
    assert (run_dir / "eval" / "2.json").read_text() == before
