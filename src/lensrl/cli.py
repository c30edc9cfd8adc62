"""The `lensrl` command line: a thin dispatcher.

Each sub-command lives in the module that owns its work and exposes two functions,
``configure_parser(parser)`` and ``run(args) -> int``. Modules are imported only when their
command is chosen, so `lensrl --help` stays fast and a broken optional extra cannot break
unrelated commands.

:func:`main` turns the project's own errors (a bad config value, a malformed data file, a
locked run folder, a damaged checkpoint, a missing file, an out-of-range flag) into one line on
stderr and exit status 2 (a run that stopped for a reason it states, exit 1);
``LENSRL_TRACEBACK=1`` shows the traceback instead. Help shows every
option's default (:class:`HelpFormatter`); :func:`positive_int` and its siblings are argparse
types that name the flag when a value is out of range.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any

# command name -> (module, or "module:object", with configure_parser and run; one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("lensrl.train.cli", "RL-train a policy with GRPO, LENS or an ablation"),
    "sft": ("lensrl.train.sft", "supervised warm-up on the built-in task"),
    "eval": ("lensrl.eval.cli", "pass@k by level with bootstrap CIs for a run's checkpoint"),
    "compare": ("lensrl.compare.cli:COMPARE", "paired comparison of runs across problems and seeds"),
    "plan": ("lensrl.compare.cli:PLAN", "seeds needed to detect a difference, from pilot runs"),
    "report": ("lensrl.report", "HTML/Markdown report with plots from run folders"),
    "demo": ("lensrl.demo", "warm-up, GRPO vs LENS, evaluation and report on the built-in task"),
    "bench": ("lensrl.bench", "speed benchmarks written as JSON"),
    "study": ("lensrl.study", "LENS vs GRPO and ablations over paired seeds, resumable"),
}


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` with each option's default, except where there is none to show (None, a
    flag's False, an empty list) or the help text already says it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if ("%(default)" in text or "default:" in text or default is argparse.SUPPRESS
                or default is None or default is False or default == []
                or not action.option_strings):
            return text
        if isinstance(default, list | tuple):
            return f"{text} (default: {' '.join(map(str, default))})"
        return text + " (default: %(default)s)"


def _ranged(kind: Callable[[str], Any], ok: Callable[[Any], bool], wants: str) -> Callable[[str], Any]:
    def parse(raw: str) -> Any:
        try:
            value = kind(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{raw!r} is not {wants}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{raw} is out of range: must be {wants}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its own messages
    return parse


# argparse types: the error names the flag ("argument --samples: 0 is out of range: ...")
positive_int = _ranged(int, lambda v: v >= 1, "a whole number >= 1")
non_negative_int = _ranged(int, lambda v: v >= 0, "a whole number >= 0")
positive_float = _ranged(float, lambda v: v > 0 and v != float("inf"), "a number > 0")
probability = _ranged(float, lambda v: 0 < v < 1, "a number in (0, 1)")
unit_interval = _ranged(float, lambda v: 0 < v <= 1, "a number in (0, 1]")


def user_errors() -> tuple[type[BaseException], ...]:
    """The errors that are the user's input, not a bug: one line and exit 2."""
    from lensrl.runs import CheckpointError, RunLockedError

    return (
        ValueError,  # ConfigError, DataError and every range check
        FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError,
        PermissionError, RunLockedError, CheckpointError,
    )


def run_failures() -> tuple[type[BaseException], ...]:
    """A run that stopped for a reason it states (e.g. lensrl.train.trainer.TrainingError: too
    many non-finite updates in a row): one line and exit 1, since the input was valid. Counted
    only once their module is loaded, as it must be to raise them."""
    trainer = sys.modules.get("lensrl.train.trainer")
    return (trainer.TrainingError,) if trainer is not None else ()


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (a YAML error or a pooling check spans several)."""
    text = ""
    for line in (line.strip() for line in str(exc).splitlines()):
        if line:
            text += line if not text else (" " if text.endswith(":") else "; ") + line
    return text or type(exc).__name__


@contextlib.contextmanager
def renamed_keys_shown() -> Iterator[None]:
    """Show each renamed-key notice (lensrl.train.migrate.RenamedKeyWarning) once, on one line;
    a DeprecationWarning is hidden by default outside ``__main__``."""
    from lensrl.train.migrate import RenamedKeyWarning

    with warnings.catch_warnings():
        warnings.simplefilter("default", RenamedKeyWarning)
        show = warnings.showwarning

        def one_line_notice(message: Any, category: type[Warning], *args: Any, **kw: Any) -> None:
            if issubclass(category, RenamedKeyWarning):
                print(f"lensrl: note: {message} (renamed in 0.2)", file=sys.stderr)
            else:
                show(message, category, *args, **kw)

        warnings.showwarning = one_line_notice
        yield


def _handler(command: str) -> Any:
    """The module (or the object in it, for "module:object") that configures and runs
    ``command``."""
    module, _, name = COMMANDS[command][0].partition(":")
    found = importlib.import_module(module)
    return getattr(found, name) if name else found


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lensrl", description="LENS: GRPO that learns from all-wrong groups."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text,
                           formatter_class=HelpFormatter)
        if name == command:
            _handler(name).configure_parser(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in COMMANDS else None
    parser = build_parser(command)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help exits 0; a bad flag returns 2, as every other error
        if exc.code in (0, None):
            raise
        return 2
    if args.command is None:
        parser.print_help()
        return 2
    module = _handler(args.command)
    try:
        with renamed_keys_shown():
            return int(module.run(args) or 0)
    except Exception as exc:
        failed = isinstance(exc, run_failures())
        if os.environ.get("LENSRL_TRACEBACK") or not (failed or isinstance(exc, user_errors())):
            raise
        print(f"lensrl {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return 1 if failed else 2
