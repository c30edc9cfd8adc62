"""Planning (``lensrl plan``): how many seeds a comparison needs, from the variances of pilot
runs. "Plan" means this one thing in lensrl.compare: seeds per arm for a target difference.

The seed-level test of ``lensrl compare`` detects a true difference ``δ`` with probability
(power) that depends on the seed-to-seed sd of the run scores and on the number of seeds. This
command estimates that sd from pilot runs and prints, per endpoint, the seeds per arm needed for
``δ`` at the stated power (:func:`lensrl.compare.stats.seeds_needed`, which also checks that the exact
sign-flip test can reach α with that many pairs at all):

* from paired pilots (two arms with the same ≥ 2 seeds): the sd of the seed-pair differences;
* else from every arm with ≥ 2 seeds: the pooled within-arm seed sd, for an unpaired design,
  and ``√2`` times it for a paired one (which assumes pairing by seed removes nothing);
* with one seed per arm the seed variance cannot be estimated: the evaluation-noise sd alone
  gives a lower bound on the seeds needed, printed as such.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lensrl.compare import stats as ss
from lensrl.compare.arms import MethodEvals, load_methods
from lensrl.compare.cells import seed_pairing
from lensrl.eval.passk import bucket_masks


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
