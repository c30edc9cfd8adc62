"""``lensrl train``: the command line of :func:`lensrl.train.trainer.train`.

Bad input (a config value, a data file, a locked folder) reaches :func:`lensrl.cli.main`, which
prints it on one line and exits 2; a start that fails leaves no run folder behind.
"""

from __future__ import annotations

import argparse
import logging
import math
import shlex
import signal
import sys
from pathlib import Path

from lensrl.cli import non_negative_int
from lensrl.runs import latest_checkpoint, read_metrics
from lensrl.train.config import TrainConfig


def configure_parser(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", type=Path,
                     help="YAML config file (a run's config.json works too)")
    src.add_argument("--preset", help="built-in preset: smoke (a plumbing test of a few seconds: "
                     "its reward stays near 0), demo, smollm2, paper")
    p.add_argument("--run-dir", help="run folder (default: runs/<run.name>)")
    p.add_argument("--steps", type=non_negative_int, help="training steps (default: run.steps)")
    p.add_argument("--seed", type=int, help="run seed (default: run.seed)")
    p.add_argument("--checkpoint-every", type=non_negative_int,
                   help="checkpoint every N steps; 0: only the last (default: run.checkpoint_every)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set algo.estimator=grpo (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    from lensrl.train.config import apply_overrides
    from lensrl.train.presets import load_config_file, load_preset

    data = load_preset(args.preset) if args.preset else load_config_file(args.config)
    flags = {"run.run_dir": args.run_dir, "run.steps": args.steps, "run.seed": args.seed,
             "run.checkpoint_every": args.checkpoint_every}
    sets = list(args.set) + [f"{k}={v}" for k, v in flags.items() if v is not None]
    if args.no_progress:
        sets.append("run.progress=false")
    return TrainConfig.from_dict(apply_overrides(data, sets),
                                 source=str(args.config or f"preset {args.preset}"))


def resume_command(argv: list[str], steps: str | None = None) -> str:
    """The command line that continues this run: the same flags, with ``--resume`` (and
    ``--steps steps`` in place of any ``--steps`` given)."""
    args = [a for a in argv if a != "--resume"]
    if args and args[0] == "train":
        args = args[1:]
    if steps is not None:
        kept: list[str] = []
        skip = False
        for a in args:
            if skip:
                skip = False
            elif a == "--steps":
                skip = True
            elif not a.startswith("--steps="):
                kept.append(a)
        args = [*kept, "--steps", steps]
    return shlex.join(["lensrl", "train", *args, "--resume"])


def _ending(run_dir: Path) -> str:
    """What a finished run has to show: its last step's reward and its checkpoint."""
    rows = [r for r in read_metrics(run_dir) if "reward/mean" in r]
    found = latest_checkpoint(run_dir)
    parts = [f"run folder {run_dir}"]
    if rows:
        reward = rows[-1]["reward/mean"]
        parts.append(f"step {rows[-1]['step']} reward/mean "
                     + ("n/a (nothing judged)" if math.isnan(reward) else f"{reward:.3f}"))
    if found is not None:
        parts.append(f"checkpoint {found[1]}")
    return "done: " + "; ".join(parts)


def run(args: argparse.Namespace) -> int:
    from lensrl.train.stop import TrainingInterrupted
    from lensrl.train.trainer import RunFinished, train

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cfg = config_from_args(args)  # a bad value fails here, before any folder is made
    try:
        run_dir = train(cfg, resume=args.resume)
    except RunFinished as done:
        print(f"{cfg.run.path} has already finished: its checkpoint is at step {done.step} and "
              f"run.steps is {cfg.run.steps}, so there is nothing to do. To train further, raise "
              f"the step count: `{resume_command(sys.argv[1:], 'N')}` with N > {done.step}")
        return 0
    except TrainingInterrupted as exc:
        print(f"interrupted at step {exc.step}; continue with `{resume_command(sys.argv[1:])}`",
              file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print("interrupted mid-step; continue from the last checkpoint with "
              f"`{resume_command(sys.argv[1:])}`", file=sys.stderr)
        return 128 + signal.SIGINT
    print(_ending(run_dir))
    return 0
