"""`lensrl bench`: what LENS costs, and lensrl's trainer against TRL on the same work.

Every headline number is a ratio of two things measured side by side in this run, in
interleaved order (A B B A ...) with medians, because absolute times on a shared machine are
noise. The JSON keys are explained in docs/benchmarks.md:

- ``advantage_ms``: :func:`lensrl.core.compute_advantages` for ``grpo`` and ``lens``.
- ``lens_step_overhead``: a LENS step ÷ a GRPO step of lensrl's trainer (same everything else,
  every row trained: ``skip_zero_advantage=False``); ``lens_step_overhead_skip`` beside it with
  the trainer's default skipping of zero-advantage rows.
- ``trainer_vs_trl_throughput``: lensrl's trained tokens/s ÷ TRL ``GRPOTrainer``'s, the two
  alternating step by step.
- ``flop_floor_ratio``: lensrl's step time ÷ its FLOPs at this run's measured matmul rate.
- ``trl_lens_step_overhead`` (lensrl.bench.trl) and ``verify_pool_speedup`` (lensrl.verify.bench).
- ``scaling``: step time and peak memory against G and completion length.
- ``real`` (only when asked for: ``--only real``, ~20 minutes): lensrl against TRL on
  SmolLM2-135M-Instruct, full fine-tuning and LoRA (lensrl.bench.real), to bench/real.json.
- ``speedups``: the update with and without its exact savings (trimmed micro-batches, the shared
  prompt prefix) and the rollout with either decoder, on the same work.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from lensrl.bench.common import GOALS, machine, matmul_gflops, quiet, section
from lensrl.bench.trainer import (
    DTYPE,
    FULL,
    QUICK,
    advantage_ms,
    lens_step_overhead,
    precision,
    scaling,
    speedups,
    template_text,
    trainer_vs_trl,
)

log = logging.getLogger("lensrl.bench")


def headline(results: dict[str, Any]) -> dict[str, Any]:
    """The issue's numbers, each with its goal and whether it holds."""
    values = {
        "lens_step_overhead": results.get("lens", {}).get("lens_step_overhead"),
        "trainer_vs_trl_throughput":
            results.get("throughput", {}).get("trainer_vs_trl_throughput"),
        "flop_floor_ratio": results.get("throughput", {}).get("flop_floor_ratio"),
        "trl_lens_step_overhead": results.get("trl", {}).get("trl_lens_step_overhead"),
        "verify_pool_speedup": results.get("verify", {}).get("verify_pool_speedup"),
        "real_vs_trl_throughput":
            results.get("real", {}).get("full", {}).get("lensrl_vs_trl_throughput"),
        "real_vs_trl_throughput_lora":
            results.get("real", {}).get("lora", {}).get("lensrl_vs_trl_throughput"),
    }
    out = {}
    for key, value in values.items():
        op, goal = GOALS[key]
        met = None if value is None else (value <= goal if op == "<=" else value >= goal)
        out[key] = {"value": value, "goal": f"{op} {goal}", "meets_goal": met}
    return out


def _trl_overhead(quick: bool) -> dict[str, Any]:
    from lensrl.bench.trl import measure_trl_lens_overhead

    return measure_trl_lens_overhead(quick=quick)


def _real_bench() -> dict[str, Any]:
    from lensrl.bench.real import measure_real

    # each variant as it ends, in case the ~20 minutes are cut short
    return measure_real(partial=Path("bench/real.partial.json"))


def _verify_bench(quick: bool) -> dict[str, Any]:
    from lensrl.verify.bench import run as verify_bench

    return verify_bench(quick=quick)


def bench(quick: bool, only: set[str] | None = None) -> dict[str, Any]:
    spec = dict(QUICK if quick else FULL)
    spec["template_text"] = template_text(spec["template"])
    spec["dtype"] = {"lensrl": DTYPE, "trl": DTYPE}
    results: dict[str, Any] = {"quick": quick, "spec": spec, "machine": machine()}
    want = (lambda k: k in only) if only else (lambda k: True)
    rates = [matmul_gflops()]
    with tempfile.TemporaryDirectory() as tmp, quiet():
        if want("advantage"):
            section(results, "advantage_ms", lambda: advantage_ms(
                spec["advantage_n"], reps=spec["advantage_reps"]))
        if want("lens"):
            section(results, "lens", lambda: lens_step_overhead(spec, Path(tmp)))
        if want("throughput"):
            rates.append(matmul_gflops())
            section(results, "throughput", lambda: trainer_vs_trl(spec, Path(tmp), max(rates)))
        if want("scaling"):
            section(results, "scaling", lambda: scaling(spec, Path(tmp)))
        if want("speedups"):
            section(results, "speedups", lambda: speedups(spec, Path(tmp)))
        if want("precision"):
            section(results, "precision", lambda: precision(spec, Path(tmp)))
    if want("trl"):
        section(results, "trl", lambda: _trl_overhead(quick))
    if want("verify"):
        section(results, "verify", lambda: _verify_bench(quick))
    if only and "real" in only:  # a real model for ~20 minutes: never part of a plain run
        section(results, "real", _real_bench)
    rates.append(matmul_gflops())
    results["matmul_gflops"] = {"runs": rates, "max": max(rates)}
    results["machine"]["load_avg_1m_end"] = machine()["load_avg_1m"]
    results["headline"] = headline(results)
    # no goal of its own: LENS trains the all-wrong groups GRPO skips (docs/benchmarks.md)
    results["lens_step_overhead_skip"] = results.get("lens", {}).get("lens_step_overhead_skip")
    return results


SECTIONS = ("advantage", "lens", "throughput", "scaling", "speedups", "precision", "trl",
            "verify", "real")


def configure_parser(p: argparse.ArgumentParser) -> None:
    from lensrl.cli import positive_int

    p.add_argument("--quick", action="store_true",
                   help="smaller model and batches (minutes on 2 cores)")
    p.add_argument("--out", type=Path,
                   help="JSON to write (default: runs/bench/results.json, runs/bench/real.json "
                   "for --only real; `make bench` and `make bench-real` write the committed "
                   "bench/results.json and bench/real.json)")
    p.add_argument("--threads", type=positive_int,
                   help="torch threads (default: torch's own choice)")
    p.add_argument("--only", action="append", choices=SECTIONS,
                   help="run only this section (repeatable; default: all but 'real', which runs "
                   "only when named)")


# result keys that are not a section's numbers
_NOT_SECTIONS = {"quick", "spec", "machine", "headline", "elapsed_s", "matmul_gflops",
                 "lens_step_overhead_skip", "errors"}


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:.4g}"


def section_lines(results: dict[str, Any]) -> list[str]:
    """One line per section that ran: its top-level numbers (the JSON has the rest)."""
    lines = []
    for key, value in results.items():
        if key in _NOT_SECTIONS:
            continue
        if isinstance(value, dict):
            numbers = [f"{k} {_fmt(v)}" for k, v in value.items()
                       if isinstance(v, int | float | str | None) and not isinstance(v, bool)]
            lines.append(f"{key}: " + (", ".join(numbers[:8]) + (" ..." if len(numbers) > 8
                                                                 else "") or "(see the JSON)"))
        elif isinstance(value, int | float | str):
            lines.append(f"{key}: {_fmt(value)}")
    return lines


def default_out(only: list[str] | None) -> Path:
    """Where ``--out`` goes when not given: under runs/ (git-ignored), never over the committed
    bench/*.json; a real-model-only run gets its own file."""
    real_only = only is not None and set(only) == {"real"}
    return Path("runs/bench/real.json" if real_only else "runs/bench/results.json")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.out is None:
        args.out = default_out(args.only)
    t = time.perf_counter()
    results = bench(args.quick, set(args.only) if args.only else None)
    results["elapsed_s"]["total"] = time.perf_counter() - t
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    for line in section_lines(results):
        print(line)
    for key, h in results["headline"].items():
        if h["value"] is None and args.only:
            continue  # a section not asked for
        value = "n/a" if h["value"] is None else f"{h['value']:.3f}"
        mark = {True: "ok", False: "MISSED", None: "-"}[h["meets_goal"]]
        print(f"{key:28s} {value:>8s}  goal {h['goal']:8s} {mark}")
    skip = results.get("lens_step_overhead_skip")
    if skip is not None:
        print(f"{'lens_step_overhead_skip':28s} {skip:8.3f}  (no goal: LENS trains all-wrong "
              "groups that GRPO skips)")
    print(f"wrote {args.out}")
    return 0
