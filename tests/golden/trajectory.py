"""The golden smoke trajectory: what `lensrl train` logs on a fixed small run, kept in
tests/golden/smoke_lens.json so that any change of behaviour between commits shows up.

Regenerate only on purpose (a change that is meant to alter training), and say why in the
commit message:

    .venv/bin/python tests/golden/trajectory.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

GOLDEN = Path(__file__).with_name("smoke_lens.json")
# LENS on the smoke preset, pinned to fp32 and one thread (summation order depends on both).
SETTINGS = {"model": {"dtype": "float32"}, "algo": {"estimator": "lens"},
            "run": {"steps": 4, "eval_every": 2, "eval_samples": 2}}


def trajectory() -> list[dict[str, Any]]:
    """Each step's metrics, without wall-clock times."""
    from lensrl.train.config import TrainConfig
    from lensrl.train.presets import load_preset
    from lensrl.train.trainer import train

    data = load_preset("smoke")
    for section, values in SETTINGS.items():
        data.setdefault(section, {}).update(values)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            data["run"]["run_dir"] = str(Path(tmp) / "run")
            run_dir = train(TrainConfig.from_dict(data))
            rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    finally:
        torch.set_num_threads(threads)
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in rows]


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps(trajectory(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}", file=sys.stderr)
