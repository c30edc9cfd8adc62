"""``lensrl study`` (``make study``): does LENS beat GRPO, where, and why, over paired seeds.

1. one supervised warm-up (``<out>/warmup``), the starting point of every run;
2. every arm (an estimator and its overrides) × its seeds, from that checkpoint at the same
   sample budget; seed s orders the data the same way in every arm (``run.seed`` seeds the
   ProblemSampler), so seeds are paired; pilot seeds first, then interleaved by seed;
3. each run's final checkpoint evaluated (``eval/<steps>.json``, which marks it done), and the
   warm-up itself evaluated with each seed's sampling (step 0);
4. a record of each (``<results>/runs.json.gz``, lensrl.study.records: the committed data);
5. ``<results>/summary.json`` and ``tables.md`` (lensrl.study.summary, from the records alone)
   and ``<results>/report/`` (lensrl report).

Killed or timed out, it continues where it stopped when run again (lensrl.study.runner).
See docs/study.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from lensrl.cli import one_line
from lensrl.study.config import StudyConfig, arm_train_config, load_study, study_from_dict
from lensrl.study.records import RECORDS_FILE, STEP0, load_study_data
from lensrl.study.report import write_report
from lensrl.study.runner import format_status, measure, run_order, run_progress, run_study
from lensrl.study.summary import build_summary, write_summary
from lensrl.train.config import ConfigError

__all__ = [
    "StudyConfig",
    "arm_train_config",
    "build_summary",
    "configure_parser",
    "load_study",
    "run_order",
    "run",
    "run_progress",
    "run_study",
    "study_from_dict",
]

log = logging.getLogger("lensrl.study")


DEFAULT_CONFIG = Path("configs/study.yaml")


def resolve_config(path: Path) -> Path:
    """``path`` as given when it exists; else, if relative, the same path in the lensrl
    checkout this package runs from (``configs/study.yaml`` from any folder of a clone);
    else ``path`` (which then fails, naming itself)."""
    if path.exists() or path.is_absolute():
        return path
    checkout = Path(__file__).resolve().parents[3]  # src/lensrl/study/__init__.py
    return checkout / path if (checkout / path).is_file() else path


def configure_parser(p: argparse.ArgumentParser) -> None:
    from lensrl.cli import non_negative_int, positive_int

    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                   help="study YAML; a relative path missing here is looked up in the lensrl "
                        "checkout")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override the study config: warmup.steps=300, eval.samples=8, "
                        "train.run.steps=50, out=runs/other ...")
    p.add_argument("--dry-run", action="store_true",
                   help="print the runs in order, what is done and the estimated time; run nothing")
    p.add_argument("--measure", type=non_negative_int, metavar="STEPS", default=0,
                   help="probe this machine: the warm-up, then STEPS RL steps of the baseline "
                        "and primary arms and a 64-problem eval (<out>/probe.json), then the "
                        "runs and the estimated time; 0: no probe")
    p.add_argument("--max-runs", type=positive_int, default=None,
                   help="stop after this many runs (the study continues on the next call)")
    p.add_argument("--jobs", type=positive_int, default=1, metavar="N",
                   help="train N runs at a time, each with cores/N torch threads (make study "
                        "uses 2 on 2 cores: two 1-thread runs do more work than one 2-thread run)")
    p.add_argument("--summary-only", action="store_true",
                   help="only rebuild summary.json, tables.md and the report from the committed "
                        "records (<results>/runs.json.gz)")
    p.add_argument("--no-report", action="store_true", help="skip the HTML/Markdown report")


def summarize(cfg: StudyConfig, *, report: bool = True) -> Path:
    import json

    from lensrl.runs import atomic_write_text
    from lensrl.study.tables import render

    path = write_summary(cfg, build_summary(cfg))
    atomic_write_text(path.parent / "tables.md", render(json.loads(path.read_text())))
    if report:
        write_report(cfg)
    return path


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        cfg = load_study(resolve_config(args.config), args.set)
        if args.measure:
            probe = measure(cfg, args.measure)
            for arm, m in probe["arms"].items():
                print(f"probe {arm}: {m['step_s_median']:.2f} s a step, all-wrong groups by "
                      f"step {[round(x, 2) for x in m['frac_negative']]}")
        if args.dry_run or args.measure:
            print(format_status(cfg))
            return 0
        if not args.summary_only:
            counts = run_study(cfg, max_runs=args.max_runs, jobs=args.jobs)
            print(f"study: {counts['executed']} runs this call, {counts['remaining']} of "
                  f"{counts['planned']} left")
        if not any(arm != STEP0 for arm, _ in load_study_data(cfg.results).records):
            print(f"study: no finished run in {cfg.results}/{RECORDS_FILE} yet, no summary "
                  "written")
            return 0
        path = summarize(cfg, report=not args.no_report)
    except (ConfigError, FileNotFoundError) as exc:
        print(f"lensrl study: error: {one_line(exc)}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0
