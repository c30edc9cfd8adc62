"""``lensrl compare`` and ``lensrl plan``: their flags, and one way to fail and to write ``--out``.

``lensrl compare RUN...`` tests every arm against the baseline over seeds
(:func:`lensrl.compare.cells.compare_runs`); ``lensrl plan RUN...`` says how many seeds a
comparison needs, from pilot runs (:func:`lensrl.compare.plan.plan`). Both print a table
(:mod:`lensrl.compare.tables`) and, with ``--out``, write the result as strict JSON. A bad
flag or run folder is one line on stderr and exit 2 (docs/evaluation.md §4).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from lensrl.compare.cells import Settings, compare_runs
from lensrl.compare.plan import plan
from lensrl.compare.tables import format_plan, format_table
from lensrl.eval.passk import DEFAULT_KS, parse_endpoints


class Command(NamedTuple):
    """What :data:`lensrl.cli.COMMANDS` names for one command of this module."""

    configure_parser: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _add_primary(parser: argparse.ArgumentParser, *, default: str | None, help: str) -> None:
    """The one ``--primary BUCKET:K,...`` flag (parsed by lensrl.eval.passk.parse_endpoints)."""
    parser.add_argument("--primary", default=default, metavar="BUCKET:K,...", help=help)


def _add_common(parser: argparse.ArgumentParser, runs_help: str) -> None:
    """Flags both commands take: the run folders and how their evaluations are read."""
    from lensrl.cli import probability

    parser.add_argument("runs", nargs="+", metavar="RUN", help=runs_help)
    parser.add_argument("--step", type=int, default=None,
                        help="evaluated step (default: each run's latest eval)")
    parser.add_argument("--group-by", default=None, metavar="KEY",
                        help="config key that defines the arms, e.g. algo.alpha "
                        "(default: algo.estimator)")
    parser.add_argument("--eval-name", default=None, metavar="NAME",
                        help="read the named evaluations eval/<step>.NAME.json (lensrl eval --name)")
    parser.add_argument("--alpha", type=probability, default=0.05,
                        help="significance level (two-sided)")
    parser.add_argument("--out", type=Path, default=None, help="also write the result as JSON")


def _finish(name: str, work: Callable[[], dict[str, Any]], table: Callable[[dict[str, Any]], str],
            out: Path | None) -> int:
    """Run ``work``; on a user error print one line and return 2; else print the table and
    write ``out`` (NaN as null: strict JSON). Returns the exit code."""
    from lensrl.cli import one_line
    from lensrl.runs import atomic_write_text, clean

    try:
        result = work()
    except (FileNotFoundError, ValueError) as err:
        print(f"lensrl {name}: error: {one_line(err)}", file=sys.stderr)
        return 2
    for w in result.get("warnings", []):
        print(f"lensrl {name}: WARNING: pooling anyway (--allow-mixed): {w}", file=sys.stderr)
    print(table(result))
    if out is not None:
        atomic_write_text(out, json.dumps(clean(result), indent=1, allow_nan=False) + "\n")
    return 0


# --- lensrl compare ----------------------------------------------------------------------------


def configure_compare(parser: argparse.ArgumentParser) -> None:
    from lensrl.cli import positive_float, positive_int, probability

    _add_common(parser, "run folders (seeds = replicates)")
    parser.add_argument("--baseline", nargs="+", default=[], metavar="RUN",
                        help="baseline run folders (default: the grpo runs, else the first arm)")
    parser.add_argument("--ks", type=positive_int, nargs="+", default=list(DEFAULT_KS),
                        help="the k of each pass@k compared (each <= the evaluations' samples)")
    _add_primary(parser, default=None, help="declared primary endpoints, e.g. "
                 "all:8,levels_4-5:16 (Holm); the rest get BH q")
    parser.add_argument("--margin", type=positive_float, default=None, metavar="PP",
                        help="equivalence margin in percentage points: adds a TOST to every row")
    parser.add_argument("--allow-mixed", action="store_true",
                        help="compare even when pooled runs differ in config, eval step or "
                        "sampling (warns)")
    parser.add_argument("--ignore-key", action="append", default=[], metavar="KEY",
                        help="config key allowed to differ between pooled runs (repeatable), "
                        "e.g. model.init_from")
    parser.add_argument("--power", type=probability, default=0.8, help="power for the MDE")
    parser.add_argument("--resamples", type=positive_int, default=2000,
                        help="bootstrap resamples")
    parser.add_argument("--permutations", type=positive_int, default=10000,
                        help="random relabellings of the permutation tests (when there are more "
                        "than can be enumerated)")
    parser.add_argument("--seed", type=int, default=0, help="seed of bootstrap and permutations")


def run_compare(args: argparse.Namespace) -> int:
    def work() -> dict[str, Any]:
        settings = Settings(
            resamples=args.resamples, permutations=args.permutations, alpha=args.alpha,
            power=args.power, margin=None if args.margin is None else args.margin / 100,
            seed=args.seed)
        return compare_runs(
            args.runs, args.baseline, settings=settings, ks=args.ks,
            primary=parse_endpoints(args.primary), step=args.step, group_by=args.group_by,
            allow_mixed=args.allow_mixed, ignore_keys=args.ignore_key, eval_name=args.eval_name)

    return _finish("compare", work, format_table, args.out)


# --- lensrl plan -------------------------------------------------------------------------------


def configure_plan(parser: argparse.ArgumentParser) -> None:
    from lensrl.cli import positive_float, probability

    _add_common(parser, "pilot run folders")
    parser.add_argument("--delta", type=positive_float, required=True, metavar="PP",
                        help="difference to detect, in percentage points")
    _add_primary(parser, default="all:1",
                 help="endpoints to plan for, e.g. all:8,levels_4-5:16")
    parser.add_argument("--power", type=probability, default=0.8,
                        help="chance of detecting a true difference of --delta")


def run_plan(args: argparse.Namespace) -> int:
    def work() -> dict[str, Any]:
        return plan(args.runs, delta=args.delta / 100, endpoints=parse_endpoints(args.primary),
                    alpha=args.alpha, power=args.power, step=args.step, group_by=args.group_by,
                    eval_name=args.eval_name)

    return _finish("plan", work, format_plan, args.out)


COMPARE = Command(configure_compare, run_compare)
PLAN = Command(configure_plan, run_plan)
