"""``lensrl demo`` (``make demo``): the main job on the built-in default, end to end.

1. supervised warm-up of a tiny from-scratch model on the built-in leveled task;
2. GRPO and LENS from the same starting weights, same seed, same sample budget;
3. evaluation with 16 samples per held-out problem (inside each run, at its last step);
4. the report (``runs/demo/report/index.html`` and ``report.md``).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from lensrl.train.config import TrainConfig, apply_overrides
from lensrl.train.presets import load_preset
from lensrl.train.sft import SFTConfig, sft
from lensrl.train.trainer import train

log = logging.getLogger("lensrl.demo")

ESTIMATORS = ("grpo", "lens")


def demo(out: Path, *, warmup_steps: int, rl_steps: int | None, overrides: list[str]) -> dict[str, Any]:
    """Run the whole demo into ``out``; returns the paths and timings."""
    from lensrl.report import build_report

    start = time.perf_counter()
    if out.exists():
        shutil.rmtree(out)  # a demo is a fresh, reproducible run every time
    base = load_preset("demo")
    task = base.get("task", {})
    t = time.perf_counter()
    warm_dir = out / "warmup"
    sft(SFTConfig(size=base["model"]["name"], steps=warmup_steps, levels=task.get("levels", [1, 2, 3, 4, 5]),
                  template=task.get("template"), task_seed=task.get("seed", 0)), warm_dir)
    timings = {"warmup_s": time.perf_counter() - t}
    runs = []
    for estimator in ESTIMATORS:
        data = apply_overrides(json.loads(json.dumps(base)), [
            f"model.init_from={warm_dir}", f"algo.estimator={estimator}",
            f"run.name=demo-{estimator}", f"run.run_dir={out / estimator}", *overrides,
            *([f"run.steps={rl_steps}"] if rl_steps else []),
        ])
        t = time.perf_counter()
        runs.append(train(TrainConfig.from_dict(data, source="preset demo")))
        timings[f"{estimator}_s"] = time.perf_counter() - t
    t = time.perf_counter()
    report = build_report(runs, out / "report")
    timings["report_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - start
    summary = {"runs": [str(r) for r in runs], "report": str(report), "timings": timings}
    (out / "demo.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="demo folder")
    p.add_argument("--warmup-steps", type=int, default=500, help="supervised warm-up steps")
    p.add_argument("--steps", type=int, help="RL steps per method (default: the demo preset's)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a field of the demo preset for both runs")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    summary = demo(args.out, warmup_steps=args.warmup_steps, rl_steps=args.steps,
                   overrides=args.set)
    print(f"report: {summary['report']} (and report.md beside it)")
    print(f"demo: {summary['timings']['total_s']:.0f} s")
    return 0
