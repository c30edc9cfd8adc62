"""``lensrl compare``: is a method better than a baseline, at the level of training seeds.

Runs are grouped into arms by ``cfg["algo"]["estimator"]`` (or ``--group-by KEY``); runs of one
arm are seed replicates and must differ only in their seed (:mod:`lensrl.eval.pooling`). Every
run's evaluation (its latest ``eval/<step>.json`` unless ``--step``) is aligned with the others
by problem id, on the problems that all of them evaluated.

For a method A against a baseline B, per bucket and k, with ``X[r, j]`` the pass@k of problem j
in run r and ``Y[r] = mean_j X[r, j]`` the run's score:

* difference ``Δ = mean_r Y_A[r] − mean_r Y_B[r]``;
* when each arm has at least 2 seeds (level "seeds", the primary inference): pair runs by
  ``run.seed`` when both arms have the same seeds, and test with the exact sign-flip test over
  the seed pairs (else the whole-run permutation test); the CI is the t interval of the
  seed-level differences (paired) or Welch's (unpaired);
* with one seed in an arm (level "checkpoints"): the per-problem permutation test and bootstrap
  CI over problems. They say whether *these two checkpoints* differ; nothing about the method.

Then effect sizes, each arm's seed sd and the seed / evaluation-noise variance split, the
minimum detectable effect, TOST against ``--margin``, Holm-adjusted p for ``--primary`` rows and
BH q-values for the rest. See docs/evaluation.md §4 for the why and the JSON schema.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lensrl.cli import one_line
from lensrl.eval import seedstats as ss
from lensrl.eval.arms import (
    MethodEvals,
    bootstrap_ci,
    check_pooling,
    load_methods,
    method_summary,
    rng_for,
)
from lensrl.eval.passk import DEFAULT_KS, bucket_masks, usable_ks
from lensrl.eval.tables import format_table

# Re-exported: the report and other callers import these from here.
__all__ = [
    "MethodEvals",
    "adjust",
    "bootstrap_ci",
    "compare",
    "compare_runs",
    "format_table",
    "load_methods",
    "method_summary",
    "parse_primary",
    "permutation_p",
]

# Above this many labellings per problem, permute directly instead of tabulating them all.
MAX_SUBSETS = 4096


def permutation_p(
    a: np.ndarray,
    b: np.ndarray,
    *,
    permutations: int = 10000,
    rng: np.random.Generator,
) -> float:
    """Two-sided p of the per-problem permutation test (labels exchanged within problems).

    H0: *all runs are identical* (for each problem the ``s_A + s_B`` values are exchangeable).
    With one seed per method this is the sign-flip test on per-problem differences: it asks
    whether two checkpoints differ, not whether the method matters (a seed's effect is shared
    by all of its problems, and relabelling per problem averages it away).
    """
    s_a, m = a.shape
    pooled = np.concatenate([a, b], axis=0).T  # (m, s_A + s_B)
    total = pooled.sum(axis=1, keepdims=True)
    observed = float((a.mean(axis=0) - b.mean(axis=0)).mean())
    s_tot = pooled.shape[1]
    s_b = s_tot - s_a
    scale = 1 / s_a + 1 / s_b
    tol = 1e-12 * max(1.0, abs(observed))
    # Δ_j for a labelling S (|S| = s_A) is sum_S v (1/s_A + 1/s_B) − T/s_B: tabulate every S
    # when there are few, so one replicate is one random column per problem.
    enumerate_all = math.comb(s_tot, s_a) <= MAX_SUBSETS
    if enumerate_all:
        subsets = np.array(list(itertools.combinations(range(s_tot), s_a)))  # (S, s_A)
        table = pooled[:, subsets].sum(axis=2) * scale - total / s_b  # (m, S)
    hits = 0
    chunk = max(1, 2_000_000 // (m * (1 if enumerate_all else s_tot)))
    for start in range(0, permutations, chunk):
        size = min(chunk, permutations - start)
        if enumerate_all:
            pick = rng.integers(0, table.shape[1], size=(m, size))
            stats = np.take_along_axis(table, pick, axis=1).mean(axis=0)  # (chunk,)
        else:
            shuffled = rng.permuted(np.broadcast_to(pooled, (size, m, s_tot)), axis=2)
            stats = (shuffled[..., :s_a].sum(axis=2) * scale - total.T / s_b).mean(axis=1)
        hits += int((np.abs(stats) >= abs(observed) - tol).sum())
    return (1 + hits) / (1 + permutations)


def seed_pairing(method: MethodEvals, baseline: MethodEvals) -> list[int] | None:
    """For each method run, the index of the baseline run with the same ``run.seed``.

    None (use an unpaired test) unless both arms have the same set of seeds, all known and
    distinct.
    """
    sa = [r.seed for r in method.runs]
    sb = [r.seed for r in baseline.runs]
    if None in sa or None in sb or len(set(sa)) != len(sa) or sorted(sa) != sorted(sb):  # type: ignore[type-var]
        return None
    return [sb.index(s) for s in sa]


def design_of(method: MethodEvals, baseline: MethodEvals) -> tuple[str, str]:
    """``(level, design)``: ``("seeds", "paired" | "unpaired")`` or ``("checkpoints",
    "per-problem")`` when an arm has a single run."""
    if len(method.runs) < 2 or len(baseline.runs) < 2:
        return "checkpoints", "per-problem"
    return "seeds", "paired" if seed_pairing(method, baseline) is not None else "unpaired"


def _arm_block(ev: MethodEvals, y: np.ndarray, eval_var: np.ndarray) -> dict[str, Any]:
    """Per-seed values, seed sd and the variance split of one arm on one (bucket, k)."""
    total = float(y.var(ddof=1)) if len(y) > 1 else math.nan
    noise = float(eval_var.mean())
    seed_var = max(0.0, total - noise) if math.isfinite(total) and math.isfinite(noise) else math.nan
    return {
        "per_seed": [
            {"run": r.name, "seed": r.seed, "value": float(v)} for r, v in zip(ev.runs, y)
        ],
        "sd_seed": math.sqrt(total) if math.isfinite(total) else None,
        "var_split": {
            "total": None if math.isnan(total) else total,
            "eval_noise": None if math.isnan(noise) else noise,
            "seed": None if math.isnan(seed_var) else seed_var,
            "seed_share": None
            if math.isnan(seed_var) or not total > 0
            else min(1.0, seed_var / total),
        },
    }


def _none(x: float) -> float | None:
    return None if not math.isfinite(x) else float(x)


def _finite(obj: Any) -> Any:
    """NaN and inf as JSON null (e.g. a one-problem bucket has no se): strict JSON, no NaN."""
    if isinstance(obj, float):
        return _none(obj)
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


@dataclass(frozen=True)
class Settings:
    """How :func:`compare` tests: resampling, levels, power target and equivalence margin."""

    resamples: int = 2000
    permutations: int = 10000
    confidence: float = 0.95
    alpha: float = 0.05
    power: float = 0.8
    margin: float | None = None
    seed: int = 0


def _test(
    xa: np.ndarray,
    xb: np.ndarray,
    va: np.ndarray,
    vb: np.ndarray,
    *,
    level: str,
    pairing: list[int] | None,
    t: Settings,
    rng: np.random.Generator,
) -> tuple[float, float, float, float, float, str, float, dict[str, Any]]:
    """``(estimate, se, df, p, effect size, its kind, p_min, extra keys)`` for the design."""
    ya, yb = xa.mean(axis=1), xb.mean(axis=1)
    extra: dict[str, Any] = {}
    df: Any  # an int or a 0-d array, depending on the design
    if level == "seeds" and pairing is not None:
        d = ya - yb[pairing]
        est, se, df = ss.paired_se(d)
        p = float(ss.sign_flip_p(d, permutations=t.permutations, rng=rng))
        sd = float(d.std(ddof=1))
        effect = float(est) / sd if sd > 0 else math.nan
        kind = "d_z: mean / sd of seed-pair differences"
        extra["sd_seed_diff"] = sd
        extra["var_split_diff"] = {"total": sd**2, "eval_noise": float((va + vb[pairing]).mean())}
        p_min = ss.smallest_p(paired=True, s_a=len(d), s_b=len(d), permutations=t.permutations)
    elif level == "seeds":
        est, se, df = ss.welch_se(ya, yb)
        p = float(ss.run_permutation_p(ya, yb, permutations=t.permutations, rng=rng))
        s_a, s_b = len(ya), len(yb)
        pooled_sd = math.sqrt(
            ((s_a - 1) * ya.var(ddof=1) + (s_b - 1) * yb.var(ddof=1)) / (s_a + s_b - 2)
        )
        effect = float(est) / pooled_sd if pooled_sd > 0 else math.nan
        kind = "Cohen's d: Δ / pooled seed sd"
        p_min = ss.smallest_p(paired=False, s_a=s_a, s_b=s_b, permutations=t.permutations)
    else:
        dj = xa.mean(axis=0) - xb.mean(axis=0)
        est, se, df = ss.paired_se(dj)
        p = permutation_p(xa, xb, permutations=t.permutations, rng=rng)
        sd = float(dj.std(ddof=1)) if len(dj) > 1 else math.nan
        effect = float(est) / sd if sd > 0 else math.nan
        kind = "d_z over problems: mean / sd of per-problem differences (these checkpoints)"
        p_min = 1.0 / (1 + t.permutations)
    return float(est), float(se), float(df), p, effect, kind, p_min, extra


def _row(
    xa: np.ndarray,
    xb: np.ndarray,
    va: np.ndarray,
    vb: np.ndarray,
    *,
    level: str,
    pairing: list[int] | None,
    t: Settings,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """The statistics of one (bucket, k) cell; ``xa``: ``(s_A, m)``, ``va``: ``(s_A,)`` noise."""
    ci_problems = bootstrap_ci(xa, xb, resamples=t.resamples, confidence=t.confidence, rng=rng)
    est, se, df, p, effect, kind, p_min, extra = _test(
        xa, xb, va, vb, level=level, pairing=pairing, t=t, rng=rng
    )
    if level == "seeds":
        lo, hi = ss.t_interval(est, se, df, t.confidence)
        ci = [float(lo), float(hi)]
    else:
        ci = list(ci_problems)
    row: dict[str, Any] = {
        "diff": float(xa.mean(axis=1).mean() - xb.mean(axis=1).mean()),
        "ci_problems": list(ci_problems),
        "p": p,
        "ci": ci,
        "p_min": p_min,
        "p_t": float(ss.t_test_p(np.asarray(est), np.asarray(se), df)),
        "se": se,
        "df": df,
        "effect_size": effect,
        "effect_size_kind": kind,
        "mde": None if p_min > t.alpha else ss.mde(se, df, alpha=t.alpha, power=t.power),
        **extra,
    }
    if t.margin is not None:
        p_tost = ss.tost_p(est, se, df, t.margin)
        row["tost"] = {"margin": t.margin, "p": p_tost, "equivalent": bool(p_tost < t.alpha)}
    else:
        row["tost"] = None
    finite: dict[str, Any] = _finite(row)
    return finite


def compare(
    method: MethodEvals,
    baseline: MethodEvals,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    resamples: int = 2000,
    permutations: int = 10000,
    confidence: float = 0.95,
    seed: int = 0,
    alpha: float = 0.05,
    power: float = 0.8,
    margin: float | None = None,
) -> dict[str, Any]:
    """One method against a baseline, per bucket and k, on the problems both evaluated.

    Rows carry no multiplicity adjustment; :func:`adjust` adds it over a set of comparisons.
    """
    base_ids = set(baseline.ids)
    common = [pid for pid in method.ids if pid in base_ids]
    if not common:
        raise ValueError(f"{method.method!r} and {baseline.method!r} share no evaluated problem")
    a, b = method.restrict(common), baseline.restrict(common)
    level, design = design_of(a, b)
    pairing = seed_pairing(a, b) if design == "paired" else None
    t = Settings(resamples, permutations, confidence, alpha, power, margin, seed)
    ks_ok = usable_ks(ks, [*a.n.ravel().tolist(), *b.n.ravel().tolist()])
    rows: list[dict[str, Any]] = []
    for k in ks_ok:
        xa_all, xb_all = a.pass_at_k(k), b.pass_at_k(k)
        for bucket, mask in bucket_masks(a.levels).items():
            xa, xb = xa_all[:, mask], xb_all[:, mask]
            va, vb = a.eval_var(k, mask), b.eval_var(k, mask)
            rng = rng_for(seed, method.method, baseline.method, bucket, k)
            stats = _row(xa, xb, va, vb, level=level, pairing=pairing, t=t, rng=rng)
            ya, yb = xa.mean(axis=1), xb.mean(axis=1)
            arm_a, arm_b = _arm_block(a, ya, va), _arm_block(b, yb, vb)
            rows.append(
                {
                    "bucket": bucket,
                    "k": k,
                    "problems": int(mask.sum()),
                    "method_mean": float(ya.mean()),
                    "baseline_mean": float(yb.mean()),
                    **stats,
                    "per_seed": {"method": arm_a["per_seed"], "baseline": arm_b["per_seed"]},
                    "sd_seed": {"method": arm_a["sd_seed"], "baseline": arm_b["sd_seed"]},
                    "var_split": {"method": arm_a["var_split"], "baseline": arm_b["var_split"]},
                }
            )
    order = {b: i for i, b in enumerate(bucket_masks(a.levels))}
    rows.sort(key=lambda r: (order[r["bucket"]], r["k"]))
    return {
        "method": method.method,
        "baseline": baseline.method,
        "level": level,
        "design": design,
        "claim": CLAIMS[level],
        "method_runs": [r.name for r in method.runs],
        "baseline_runs": [r.name for r in baseline.runs],
        "method_seeds": [r.seed for r in method.runs],
        "baseline_seeds": [r.seed for r in baseline.runs],
        "method_steps": list(method.steps),
        "baseline_steps": list(baseline.steps),
        "problems": len(common),
        "dropped_problems": len(method.ids) + len(baseline.ids) - 2 * len(common),
        "rows": rows,
    }


CLAIMS = {
    "seeds": "seed-level test: is the method better than the baseline, over training seeds, "
    "on these problems",
    "checkpoints": "one seed in an arm: these rows test whether these two checkpoints differ; "
    "no claim about the method can be made (train at least 2 seeds per arm)",
}


def parse_primary(spec: str | None) -> list[tuple[str, int]]:
    """``"all:8,levels_4-5:16"`` → ``[("all", 8), ("levels_4-5", 16)]``.

    Raises:
        ValueError: an item is not ``BUCKET:K`` with an integer K ≥ 1 (the message quotes it).
    """
    if not spec:
        return []
    out: list[tuple[str, int]] = []
    for item in spec.split(","):
        bucket, sep, k = item.strip().rpartition(":")
        if not sep or not bucket or not k.isdigit() or int(k) < 1:
            raise ValueError(f"--primary: {item.strip()!r} is not BUCKET:K (e.g. all:8)")
        out.append((bucket, int(k)))
    return out


def adjust(
    comparisons: Sequence[dict[str, Any]],
    primary: Sequence[tuple[str, int]] = (),
    *,
    alpha: float = 0.05,
) -> None:
    """Label every row primary or secondary and add ``p_holm`` / ``q_bh`` and ``significant``.

    The family of primaries is every ``(bucket, k)`` of ``primary`` in every comparison (Holm,
    family-wise error ≤ α); all other rows of all comparisons form the secondary family (BH,
    false discovery rate ≤ α). Rows are changed in place.

    Raises:
        ValueError: a primary ``(bucket, k)`` matches no row (names the buckets and ks there are).
    """
    wanted = set(primary)
    rows = [r for cmp in comparisons for r in cmp["rows"]]
    present = {(r["bucket"], r["k"]) for r in rows}
    missing = sorted(wanted - present)
    if missing:
        buckets = sorted({b for b, _ in present})
        ks = sorted({k for _, k in present})
        raise ValueError(
            f"--primary {','.join(f'{b}:{k}' for b, k in missing)}: no such row "
            f"(buckets {buckets}, ks {ks})"
        )
    prim = [r for r in rows if (r["bucket"], r["k"]) in wanted]
    sec = [r for r in rows if (r["bucket"], r["k"]) not in wanted]
    for r, adj in zip(prim, ss.holm([r["p"] for r in prim])):
        r.update(role="primary", p_holm=float(adj), q_bh=None, significant=bool(adj < alpha))
    for r, q in zip(sec, ss.bh([r["p"] for r in sec])):
        r.update(role="secondary", p_holm=None, q_bh=float(q), significant=bool(q < alpha))


def pick_baseline(methods: Sequence[str]) -> str:
    """``grpo`` when present, else the first method given."""
    return "grpo" if "grpo" in methods else methods[0]


def compare_runs(
    run_dirs: Sequence[str | Path],
    baseline_dirs: Sequence[str | Path] = (),
    *,
    step: int | None = None,
    ks: Sequence[int] = DEFAULT_KS,
    resamples: int = 2000,
    permutations: int = 10000,
    confidence: float = 0.95,
    seed: int = 0,
    primary: str | Sequence[tuple[str, int]] | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    margin: float | None = None,
    group_by: str | None = None,
    allow_mixed: bool = False,
    ignore_keys: Sequence[str] = (),
    eval_name: str | None = None,
) -> dict[str, Any]:
    """Every arm in ``run_dirs`` against the baseline (``baseline_dirs``' arm, else
    :func:`pick_baseline`). Returns the JSON written by ``--out`` (docs/evaluation.md §4).

    Raises:
        ValueError: fewer than two arms, a bad ``--primary``, or runs that should not be pooled
            (:mod:`lensrl.eval.pooling`; ``ignore_keys`` are config keys not checked) unless
            ``allow_mixed``, which records them as ``warnings`` instead.
    """
    prim = parse_primary(primary) if isinstance(primary, str | None) else list(primary)
    methods = load_methods(list(run_dirs), step=step, group_by=group_by, eval_name=eval_name)
    if baseline_dirs:
        base_methods = load_methods(list(baseline_dirs), step=step, group_by=group_by,
                                    eval_name=eval_name)
        if len(base_methods) != 1:
            raise ValueError(f"--baseline runs span several arms: {sorted(base_methods)}")
        baseline = next(iter(base_methods.values()))
    else:
        if len(methods) < 2:
            raise ValueError(f"need runs of at least two methods (arms), got {sorted(methods)}")
        baseline = methods[pick_baseline(list(methods))]
    # The baseline's own seeds may also be listed among the runs: compare the others only.
    others = [m for name, m in methods.items() if name != baseline.method]
    if not others:
        raise ValueError("nothing to compare against the baseline")
    warnings = check_pooling([baseline, *others], group_by=group_by, ignore=ignore_keys)
    if warnings and not allow_mixed:
        raise ValueError(
            "these runs should not be pooled or compared (pass --allow-mixed to go on anyway):\n  "
            + "\n  ".join(warnings)
        )
    comparisons = [
        compare(
            m,
            baseline,
            ks=ks,
            resamples=resamples,
            permutations=permutations,
            confidence=confidence,
            seed=seed,
            alpha=alpha,
            power=power,
            margin=margin,
        )
        for m in others
    ]
    adjust(comparisons, prim, alpha=alpha)
    return {
        "schema": 2,
        "baseline": baseline.method,
        "group_by": group_by or "algo.estimator",
        "primary": [f"{b}:{k}" for b, k in prim],
        "alpha": alpha,
        "power": power,
        "margin": margin,
        "warnings": warnings,
        "test": test_description(resamples=resamples, permutations=permutations, seed=seed)
        | {"confidence": confidence},
        "comparisons": comparisons,
    }


def test_description(*, resamples: int, permutations: int, seed: int) -> dict[str, Any]:
    """What each number means, stored in the JSON beside them."""
    return {
        "difference": "mean over seeds of the run score (mean pass@k over the bucket's "
        "problems), method − baseline",
        "p_seeds": "exact sign-flip test over seed pairs (paired by run.seed), else whole-run "
        f"permutation test; {permutations} random relabellings when there are more than "
        f"{ss.MAX_RELABELLINGS}; two-sided",
        "ci_seeds": "t interval of the seed-level differences (paired) or Welch's (unpaired)",
        "p_checkpoints": "per-problem permutation test, labels exchanged within problems, "
        f"{permutations} permutations (these checkpoints differ)",
        "ci_problems": f"paired percentile bootstrap over problems, {resamples} resamples, "
        "runs held fixed",
        "multiplicity": "Holm over the --primary rows; Benjamini-Hochberg q over the others",
        "mde": "true difference the t test detects with the stated power at alpha; null when "
        "the randomization test cannot reach alpha with this many seeds",
        "seed": seed,
    }


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from lensrl.cli import positive_float, positive_int, probability

    parser.add_argument("runs", nargs="+", metavar="RUN", help="run folders (seeds = replicates)")
    parser.add_argument(
        "--baseline",
        nargs="+",
        default=[],
        metavar="RUN",
        help="baseline run folders (default: the grpo runs, else the first arm)",
    )
    parser.add_argument(
        "--step",
        type=int,
        default=None,
        help="evaluated step to compare (default: each run's latest eval)",
    )
    parser.add_argument("--ks", type=positive_int, nargs="+", default=list(DEFAULT_KS),
                        help="the k of each pass@k compared (each <= the evaluations' samples)")
    parser.add_argument(
        "--primary",
        default=None,
        metavar="BUCKET:K,...",
        help="declared primary endpoints, e.g. all:8,levels_4-5:16 (Holm); the rest get BH q",
    )
    parser.add_argument(
        "--margin",
        type=positive_float,
        default=None,
        metavar="PP",
        help="equivalence margin in percentage points: adds a TOST to every row",
    )
    parser.add_argument(
        "--group-by",
        default=None,
        metavar="KEY",
        help="config key that defines the arms, e.g. algo.alpha (default: algo.estimator)",
    )
    parser.add_argument(
        "--allow-mixed",
        action="store_true",
        help="compare even when pooled runs differ in config, eval step or sampling (warns)",
    )
    parser.add_argument(
        "--ignore-key",
        action="append",
        default=[],
        metavar="KEY",
        help="config key allowed to differ between pooled runs (repeatable), e.g. model.init_from",
    )
    parser.add_argument("--alpha", type=probability, default=0.05, help="significance level")
    parser.add_argument("--power", type=probability, default=0.8, help="power for the MDE")
    parser.add_argument("--resamples", type=positive_int, default=2000,
                        help="bootstrap resamples")
    parser.add_argument("--permutations", type=positive_int, default=10000,
                        help="random relabellings of the permutation tests (when there are more "
                        "than can be enumerated)")
    parser.add_argument("--seed", type=int, default=0, help="seed of bootstrap and permutations")
    parser.add_argument("--out", type=Path, default=None, help="also write the result as JSON")
    parser.add_argument("--eval-name", default=None, metavar="NAME",
                        help="read the named evaluations eval/<step>.NAME.json (lensrl eval --name)")


def _check_levels(args: argparse.Namespace) -> None:
    if not 0 < args.alpha < 1:
        raise ValueError(f"--alpha must be in (0, 1), got {args.alpha}")
    if not 0 < args.power < 1:
        raise ValueError(f"--power must be in (0, 1), got {args.power}")
    if args.margin is not None and not args.margin > 0:
        raise ValueError(f"--margin must be > 0 (percentage points), got {args.margin}")


def run(args: argparse.Namespace) -> int:
    try:
        _check_levels(args)
        result = compare_runs(
            args.runs,
            args.baseline,
            step=args.step,
            ks=args.ks,
            resamples=args.resamples,
            permutations=args.permutations,
            seed=args.seed,
            primary=args.primary,
            alpha=args.alpha,
            power=args.power,
            margin=None if args.margin is None else args.margin / 100,
            group_by=args.group_by,
            allow_mixed=args.allow_mixed,
            ignore_keys=args.ignore_key,
            eval_name=args.eval_name,
        )
    except (FileNotFoundError, ValueError) as err:
        print(f"lensrl compare: error: {one_line(err)}", file=sys.stderr)
        return 2
    for w in result["warnings"]:
        print(f"lensrl compare: WARNING: pooling anyway (--allow-mixed): {w}", file=sys.stderr)
    print(format_table(result))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0
