"""``lensrl plan``: how many seeds a comparison needs, from the variances of pilot runs.

The seed-level test of ``lensrl compare`` detects a true difference ``δ`` with probability
(power) that depends on the seed-to-seed sd of the run scores and on the number of seeds. This
command estimates that sd from pilot runs and prints, per endpoint, the seeds per arm needed for
``δ`` at the stated power (:func:`lensrl.eval.seedstats.seeds_needed`):

* from paired pilots (two arms with the same ≥ 2 seeds): the sd of the seed-pair differences;
* else from every arm with ≥ 2 seeds: the pooled within-arm seed sd, for an unpaired design,
  and ``√2`` times it for a paired one (which assumes pairing by seed removes nothing);
* with one seed per arm the seed variance cannot be estimated: the evaluation-noise sd alone
  gives a lower bound on the seeds needed, printed as such.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lensrl.cli import one_line
from lensrl.eval import seedstats as ss
from lensrl.eval.compare import MethodEvals, load_methods, parse_primary, seed_pairing
from lensrl.eval.passk import bucket_label, bucket_masks


def _estimate(
    arms: Sequence[MethodEvals], bucket: str, k: int
) -> tuple[float, float, str, float]:
    """``(sd_paired_diff, sd_arm, source, pilot seeds)`` on one (bucket, k)."""
    scores, noise = [], []
    for ev in arms:
        mask = bucket_masks(ev.levels).get(bucket)
        if mask is None:
            raise ValueError(f"bucket {bucket!r} is not in {ev.method!r}'s evaluations")
        scores.append(ev.pass_at_k(k, mask).mean(axis=1))
        noise.append(float(ev.eval_var(k, mask).mean()))
    if len(arms) >= 2:
        pairing = seed_pairing(arms[1], arms[0])
        if pairing is not None and len(pairing) >= 2:
            d = scores[1] - scores[0][pairing]
            sd = float(d.std(ddof=1))
            return sd, sd / math.sqrt(2), "paired pilot seeds", float(len(d))
    multi = [y for y in scores if len(y) >= 2]
    if multi:
        dof = sum(len(y) - 1 for y in multi)
        sd = math.sqrt(sum(float(y.var(ddof=1)) * (len(y) - 1) for y in multi) / dof)
        return sd * math.sqrt(2), sd, "pooled within-arm seed sd", float(dof + len(multi))
    sd = math.sqrt(float(np.nanmean(noise)))
    return sd * math.sqrt(2), sd, "evaluation noise only (lower bound)", 1.0


def plan(
    run_dirs: Sequence[str | Path],
    *,
    delta: float,
    endpoints: Sequence[tuple[str, int]] = (("all", 1),),
    alpha: float = 0.05,
    power: float = 0.8,
    step: int | None = None,
    group_by: str | None = None,
    eval_name: str | None = None,
) -> dict[str, Any]:
    """Seeds per arm to detect ``delta`` (a fraction: 0.02 = 2 points) on each endpoint."""
    if not delta > 0:
        raise ValueError(f"--delta must be > 0 percentage points, got {100 * delta}")
    arms = list(load_methods(list(run_dirs), step=step, group_by=group_by,
                             eval_name=eval_name).values())
    rows = []
    for bucket, k in endpoints:
        if any(k > int(ev.n.min()) for ev in arms):
            raise ValueError(f"--primary {bucket}:{k}: k exceeds the pilots' samples per problem")
        sd_diff, sd_arm, source, _ = _estimate(arms, bucket, k)
        rows.append(
            {
                "bucket": bucket,
                "k": k,
                "source": source,
                "sd_diff": sd_diff,
                "sd_seed": sd_arm,
                "seeds_paired": ss.seeds_needed(
                    sd_diff, delta, paired=True, alpha=alpha, power=power
                ),
                "seeds_unpaired": ss.seeds_needed(
                    sd_arm, delta, paired=False, alpha=alpha, power=power
                ),
                "lower_bound": source.startswith("evaluation noise"),
            }
        )
    return {
        "arms": {ev.method: [r.name for r in ev.runs] for ev in arms},
        "delta": delta,
        "alpha": alpha,
        "power": power,
        "rows": rows,
    }


def format_status(result: dict[str, Any]) -> str:
    lines = [
        f"Seeds per arm to detect δ = {100 * result['delta']:.2f} pp with power "
        f"{result['power']} at α = {result['alpha']} (two-sided, seed-level test)",
        f"{'bucket':<11}{'k':>4}{'seed sd':>9}{'diff sd':>9}{'paired':>8}{'unpaired':>10}  source",
    ]
    for r in result["rows"]:
        bound = "≥" if r["lower_bound"] else ""

        def count(x: int | None, bound: str = bound) -> str:
            return ">1000" if x is None else f"{bound}{x}"

        lines.append(
            f"{bucket_label(r['bucket']):<11}{r['k']:>4}{100 * r['sd_seed']:>9.2f}"
            f"{100 * r['sd_diff']:>9.2f}{count(r['seeds_paired']):>8}"
            f"{count(r['seeds_unpaired']):>10}  {r['source']}"
        )
    lines.append(
        "sds in pp. paired: runs of both arms share run.seed (needs ≥ 6 pairs for p < 0.05 "
        "at all); unpaired: seeds per arm."
    )
    return "\n".join(lines)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from lensrl.cli import positive_float, probability

    parser.add_argument("runs", nargs="+", metavar="RUN", help="pilot run folders")
    parser.add_argument(
        "--delta", type=positive_float, required=True, metavar="PP",
        help="difference to detect, in percentage points"
    )
    parser.add_argument(
        "--primary",
        default="all:1",
        metavar="BUCKET:K,...",
        help="endpoints to plan for, e.g. all:8,levels_4-5:16",
    )
    parser.add_argument("--alpha", type=probability, default=0.05,
                        help="significance level of the planned test (two-sided)")
    parser.add_argument("--power", type=probability, default=0.8,
                        help="chance of detecting a true difference of --delta")
    parser.add_argument("--step", type=int, default=None,
                        help="evaluated step of the pilots (default: each run's latest)")
    parser.add_argument("--group-by", default=None, metavar="KEY",
                        help="config key that defines the arms (default: algo.estimator)")
    parser.add_argument("--out", type=Path, default=None, help="also write the plan as JSON")
    parser.add_argument("--eval-name", default=None, metavar="NAME",
                        help="read the named evaluations eval/<step>.NAME.json (lensrl eval --name)")


def run(args: argparse.Namespace) -> int:
    try:
        if not 0 < args.alpha < 1 or not 0 < args.power < 1:
            raise ValueError(f"--alpha and --power must be in (0, 1), got {args.alpha}, {args.power}")
        result = plan(
            args.runs,
            delta=args.delta / 100,
            endpoints=parse_primary(args.primary),
            alpha=args.alpha,
            power=args.power,
            step=args.step,
            group_by=args.group_by,
            eval_name=args.eval_name,
        )
    except (FileNotFoundError, ValueError) as err:
        print(f"lensrl plan: error: {one_line(err)}", file=sys.stderr)
        return 2
    print(format_status(result))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0
