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
    base = load_preset("demo")
    task = base.get("task", {})
    warm_dir = out / "warmup"
    configs = {  # built first: a bad --set fails before the old demo is replaced
        estimator: TrainConfig.from_dict(apply_overrides(json.loads(json.dumps(base)), [
            f"model.init_from={warm_dir}", f"algo.estimator={estimator}",
            f"run.name=demo-{estimator}", f"run.run_dir={out / estimator}", *overrides,
            *([f"run.steps={rl_steps}"] if rl_steps else []),
        ]), source="preset demo")
        for estimator in ESTIMATORS
    }
    if out.exists():
        shutil.rmtree(out)  # a demo is a fresh, reproducible run every time
    t = time.perf_counter()
    sft(SFTConfig(size=base["model"]["name"], steps=warmup_steps, levels=task.get("levels", [1, 2, 3, 4, 5]),
                  template=task.get("template"), task_seed=task.get("seed", 0)), warm_dir)
    timings = {"warmup_s": time.perf_counter() - t}
    runs = []
    for estimator, cfg in configs.items():
        t = time.perf_counter()
        runs.append(train(cfg))
        timings[f"{estimator}_s"] = time.perf_counter() - t
    t = time.perf_counter()
    report = build_report(runs, out / "report")
    timings["report_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - start
    summary = {"runs": [str(r) for r in runs], "report": str(report), "timings": timings}
    (out / "demo.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def headline(runs: list[str]) -> list[str]:
    """The comparison the demo exists for: each method's held-out pass@1 at its last
    evaluation, overall and on the hardest levels, in percent."""
    from lensrl.eval.evaluate import eval_steps, read_eval
    from lensrl.eval.passk import ALL, HARD

    lines = []
    for run_dir in runs:
        steps = eval_steps(run_dir)
        if not steps:
            lines.append(f"{Path(run_dir).name}: no evaluation")
            continue
        result = read_eval(run_dir, steps[-1])
        cells = result.get("pass_at_k", {})
        parts = []
        for bucket in (ALL, HARD):
            cell = cells.get(bucket, {}).get("1")
            if cell is not None:
                lo, hi = cell["ci"]
                parts.append(f"{bucket} {100 * cell['mean']:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]")
        lines.append(f"{Path(run_dir).name}: held-out pass@1 at step {steps[-1]}: "
                     + ", ".join(parts))
    return lines


def configure_parser(p: argparse.ArgumentParser) -> None:
    from lensrl.cli import positive_int

    p.add_argument("--out", type=Path, default=Path("runs/demo"),
                   help="demo folder (replaced by each demo)")
    p.add_argument("--warmup-steps", type=positive_int, default=500,
                   help="supervised warm-up steps")
    p.add_argument("--steps", type=positive_int,
                   help="RL steps per method (default: the demo preset's run.steps)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a field of the demo preset for both runs")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    summary = demo(args.out, warmup_steps=args.warmup_steps, rl_steps=args.steps,
                   overrides=args.set)
    for line in headline(summary["runs"]):
        print(line)
    print(f"report: {summary['report']} (and report.md beside it); compare the two with "
          f"`lensrl compare {' '.join(summary['runs'])}`")
    print(f"demo: {summary['timings']['total_s']:.0f} s")
    return 0
