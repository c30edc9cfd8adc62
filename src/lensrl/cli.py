"""The `lensrl` command line: a thin dispatcher.

Each sub-command lives in the module that owns its work and exposes two functions,
``configure_parser(parser)`` and ``run(args) -> int``. Modules are imported only when their
command is chosen, so `lensrl --help` stays fast and a broken optional extra cannot break
unrelated commands.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("lensrl.train.cli", "RL-train a policy with GRPO, LENS or an ablation"),
    "sft": ("lensrl.train.sft", "supervised warm-up on the built-in task"),
    "eval": ("lensrl.eval.cli", "pass@k by level with bootstrap CIs for a run's checkpoint"),
    "compare": ("lensrl.eval.compare", "paired comparison of runs across problems and seeds"),
    "plan": ("lensrl.eval.plan", "seeds needed to detect a difference, from pilot runs"),
    "report": ("lensrl.report", "HTML/Markdown report with plots from run folders"),
    "demo": ("lensrl.demo", "warm-up, GRPO vs LENS, evaluation and report on the built-in task"),
    "bench": ("lensrl.bench", "speed benchmarks written as JSON"),
    "study": ("lensrl.study", "LENS vs GRPO and ablations over paired seeds, resumable"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lensrl", description="LENS: GRPO that learns from all-wrong groups."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            importlib.import_module(module).configure_parser(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in COMMANDS else None
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(COMMANDS[args.command][0])
    return int(module.run(args) or 0)
