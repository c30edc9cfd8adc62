"""``lensrl train``: the command line of :func:`lensrl.train.trainer.train`."""

from __future__ import annotations

import argparse
import logging
import shlex
import signal
import sys
from pathlib import Path

from lensrl.runs import CheckpointError, RunLockedError
from lensrl.train.config import ConfigError, TrainConfig
from lensrl.train.trainer import TrainingError, TrainingInterrupted, train


def configure_parser(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", type=Path, help="YAML config file")
    src.add_argument("--preset", help="built-in preset: smoke, demo, smollm2, paper")
    p.add_argument("--run-dir", help="run folder (default runs/<run.name>)")
    p.add_argument("--steps", type=int, help="training steps")
    p.add_argument("--seed", type=int, help="run seed")
    p.add_argument("--checkpoint-every", type=int, help="checkpoint every N steps")
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


def resume_command(argv: list[str]) -> str:
    """The command line that continues this run: the same flags, with ``--resume``."""
    args = [a for a in argv if a != "--resume"]
    if args and args[0] == "train":
        args = args[1:]
    return shlex.join(["lensrl", "train", *args, "--resume"])


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        cfg = config_from_args(args)
        run_dir = train(cfg, resume=args.resume)
    except (ConfigError, FileNotFoundError, RunLockedError, CheckpointError) as exc:
        print(f"lensrl train: error: {exc}", file=sys.stderr)
        return 2
    except TrainingError as exc:
        print(f"lensrl train: error: {exc}", file=sys.stderr)
        return 1
    except TrainingInterrupted as exc:
        print(f"interrupted at step {exc.step}; continue with `{resume_command(sys.argv[1:])}`",
              file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print("interrupted mid-step; continue from the last checkpoint with "
              f"`{resume_command(sys.argv[1:])}`", file=sys.stderr)
        return 128 + signal.SIGINT
    print(f"run folder: {run_dir}")
    return 0
