"""`lensrl bench` prints a line for each section it ran and writes under runs/ by default."""

from __future__ import annotations

from pathlib import Path

from lensrl.bench import default_out, section_lines
from lensrl.cli import build_parser


def test_each_section_that_ran_gets_a_line() -> None:
    results = {"quick": True, "spec": {}, "machine": {}, "elapsed_s": {"advantage_ms": 1.0},
               "advantage_ms": {"grpo": 0.123456, "lens": 0.2, "sizes": [1, 2]},
               "verify": {"error": "ImportError: no math-verify"}, "headline": {}}
    lines = section_lines(results)
    assert lines == ["advantage_ms: grpo 0.1235, lens 0.2",
                     "verify: error ImportError: no math-verify"]


def test_default_out_is_under_runs_not_the_committed_results() -> None:
    args = build_parser("bench").parse_args(["bench"])
    assert args.out is None  # resolved by default_out when the command runs
    assert default_out(args.only) == Path("runs/bench/results.json")
    assert default_out(["real"]) == Path("runs/bench/real.json")
    assert default_out(["real", "trl"]) == Path("runs/bench/results.json")
