"""A run's rewards do not depend on the machine's load: the demo preset's first 30
steps give the same metrics alone and beside CPU hogs. Before the verifier retried the pairs of a
starved worker (lensrl.verify.pool), a loaded machine could push a pair past its time limit and
turn a right answer into a "timeout", and the run diverged from there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

STEPS = 30


def _metrics(run_dir: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in rows]


def _run(warm: Path, run_dir: Path) -> list[dict[str, Any]]:
    from lensrl.train.config import TrainConfig, apply_overrides
    from lensrl.train.presets import load_preset
    from lensrl.train.trainer import train

    data = apply_overrides(load_preset("demo"), [
        f"model.init_from={warm}", "algo.estimator=lens", f"run.run_dir={run_dir}",
        f"run.steps={STEPS}", "run.eval_every=0", "run.checkpoint_every=0",
        "run.progress=false"])
    train(TrainConfig.from_dict(data))
    return _metrics(run_dir)


@pytest.mark.slow
def test_demo_preset_metrics_are_the_same_beside_a_cpu_hog(tmp_path: Path, one_thread: None) -> None:
    """(One torch thread: spinning OpenMP threads beside a hog would only make it slower.)"""
    from lensrl.train.presets import load_preset
    from lensrl.train.sft import SFTConfig, sft

    warm = tmp_path / "warm"  # a short warm-up: the model must write answers to be judged
    task = load_preset("demo")["task"]
    sft(SFTConfig(size="tiny", steps=60, batch_size=64, template=task["template"]), warm)
    alone = _run(warm, tmp_path / "alone")
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(2 * (os.cpu_count() or 1))]
    try:
        loaded = _run(warm, tmp_path / "loaded")
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    assert [r["step"] for r in alone] == list(range(1, STEPS + 1))
    assert any(r["reward/mean"] > 0 for r in alone)  # answers were judged right, not only wrong
    for a, b in zip(alone, loaded):
        assert a == b, f"step {a['step']} differs under load"
