"""``lensrl demo`` (``make demo``): the main job on the built-in default, end to end.

1. supervised warm-up of a tiny from-scratch model on the built-in leveled task;
2. GRPO and LENS from the same starting weights, same seed, same sample budget;
3. evaluation with 16 samples per held-out problem (inside each run, at its last step);
4. the report (``runs/demo/report/index.html`` and ``report.md``).

``lensrl demo --real`` (``make demo-real``) does the same on a real model, SmolLM2-135M-Instruct
with the calibrated ``smollm2`` preset (docs/training.md): no warm-up; each run scores the
starting checkpoint (step 0) on the held-out set before training; then the paired before/after
table (:func:`before_after`) and ``lensrl plan`` on the pair. It resumes: run it again after an
interruption and finished runs are kept, an interrupted one resumes from its last checkpoint.
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
    from lensrl.eval.passk import ALL, HARD
    from lensrl.runs import eval_steps, read_eval

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


REAL_PRESET = "smollm2"


def before_after(run_dir: Path, ks: tuple[int, ...] = (1, 8)) -> dict[str, Any]:
    """Held-out pass@k of a run's first and last evaluation (step 0 and the end), paired by
    problem: the mean change with a 95% bootstrap CI over problems and the per-problem sign-flip
    p. One seed: this says whether *these checkpoints* differ, not whether the method is better."""

    from lensrl.compare.stats import bootstrap_mean_ci, problem_permutation_p, rng_for
    from lensrl.eval.passk import pass_at_k_per_problem
    from lensrl.runs import eval_steps, read_eval

    steps = eval_steps(run_dir)
    first, last = read_eval(run_dir, steps[0]), read_eval(run_dir, steps[-1])
    before = {p["id"]: p for p in first["problems"]}
    after = [p for p in last["problems"] if p["id"] in before]
    out: dict[str, Any] = {"steps": [steps[0], steps[-1]], "problems": len(after)}
    n_min = min([p["n"] for p in after] + [before[p["id"]]["n"] for p in after])
    for k in (k for k in ks if k <= n_min):
        a = pass_at_k_per_problem([p["n"] for p in after], [p["c"] for p in after], k)[None]
        b = pass_at_k_per_problem([before[p["id"]]["n"] for p in after],
                                  [before[p["id"]]["c"] for p in after], k)[None]
        lo, hi = bootstrap_mean_ci((a - b)[0], rng=rng_for(0, "before_after", k))
        out[f"pass@{k}"] = {"before": float(b.mean()), "after": float(a.mean()),
                            "delta": float(a.mean() - b.mean()), "ci": [lo, hi],
                            "p": problem_permutation_p(a, b, rng=rng_for(0, "before_after_p", k))}
    return out


def demo_real(out: Path, *, rl_steps: int | None, overrides: list[str]) -> dict[str, Any]:
    """``lensrl demo --real`` into ``out``; resumable (see the module docstring)."""
    from lensrl.compare.plan import plan
    from lensrl.compare.tables import format_plan
    from lensrl.report import build_report

    start, cpu = time.perf_counter(), time.process_time()
    base = load_preset(REAL_PRESET)
    runs, timings = [], {}
    for estimator in ESTIMATORS:
        run_dir = out / estimator
        data = apply_overrides(json.loads(json.dumps(base)), [
            f"algo.estimator={estimator}", f"run.name=real-{estimator}", f"run.run_dir={run_dir}",
            *overrides, *([f"run.steps={rl_steps}"] if rl_steps else []),
        ])
        cfg = TrainConfig.from_dict(data, source=f"preset {REAL_PRESET}")
        t = time.perf_counter()
        if (run_dir / "eval" / f"{cfg.run.steps}.json").is_file():
            log.info("%s: already finished, kept", run_dir)
            runs.append(run_dir)
        else:  # a new run, or the resume of an interrupted one
            runs.append(train(cfg, resume=(run_dir / "config.json").is_file()))
        timings[f"{estimator}_s"] = time.perf_counter() - t
    report = build_report(runs, out / "report")
    changes = {e: before_after(r) for e, r in zip(ESTIMATORS, runs)}
    pilot = plan(runs, delta=0.05, endpoints=(("all", 1),))
    timings["total_s"] = time.perf_counter() - start
    # CPU seconds of this process (all its threads): on a shared machine the wall time says
    # little, and an idle 2-core one runs this in about cpu_s / 2 to cpu_s seconds
    timings["cpu_s"] = time.process_time() - cpu
    summary = {"runs": [str(r) for r in runs], "report": str(report), "before_after": changes,
               "plan_5pp": pilot, "plan_text": format_plan(pilot), "timings": timings}
    (out / "demo.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def format_before_after(changes: dict[str, Any]) -> str:
    lines = ["held-out, step 0 -> end, paired by problem (95% bootstrap CI over problems):"]
    for estimator, c in changes.items():
        for k in ("pass@1", "pass@8"):
            if k not in c:
                continue
            r = c[k]
            lines.append(f"  {estimator:<5}{k:<7}{100 * r['before']:6.1f} -> {100 * r['after']:5.1f}"
                         f"  delta {100 * r['delta']:+5.1f} pp  [{100 * r['ci'][0]:+.1f}, "
                         f"{100 * r['ci'][1]:+.1f}]  p = {r['p']:.3g}  ({c['problems']} problems)")
    return "\n".join(lines)


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
    p.add_argument("--real", action="store_true",
                   help="SmolLM2-135M-Instruct on the calibrated smollm2 preset, no warm-up, "
                   "resumable (default --out runs/demo-real)")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.real:
        out = args.out if args.out != Path("runs/demo") else Path("runs/demo-real")
        summary = demo_real(out, rl_steps=args.steps, overrides=args.set)
        print(format_before_after(summary["before_after"]))
        print(summary["plan_text"])
        print("one seed pair: these checkpoints improved or not; a method claim needs the "
              "seeds above")
        print(f"report: {summary['report']} (and report.md beside it)")
        print(f"demo-real: {summary['timings']['total_s']:.0f} s "
              f"({summary['timings']['cpu_s']:.0f} CPU s in this call)")
        return 0
    summary = demo(args.out, warmup_steps=args.warmup_steps, rl_steps=args.steps,
                   overrides=args.set)
    for line in headline(summary["runs"]):
        print(line)
    print(f"report: {summary['report']} (and report.md beside it); compare the two with "
          f"`lensrl compare {' '.join(summary['runs'])}`")
    print(f"demo: {summary['timings']['total_s']:.0f} s")
    return 0
