"""``lensrl compare``'s numbers: is a method better than a baseline, at the level of training seeds.

Runs are grouped into arms by ``cfg["algo"]["estimator"]`` (or ``--group-by KEY``); runs of one
arm are seed replicates and must differ only in their seed (:mod:`lensrl.compare.pooling`).
Every run's evaluation (its latest ``eval/<step>.json`` unless ``--step``) is aligned with the
others by problem id, on the problems that all of them evaluated.

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
minimum detectable effect, TOST against ``Settings.margin``, Holm-adjusted p for the primary
rows and BH q-values for the rest. Every statistic is :mod:`lensrl.compare.stats`'s. See
docs/evaluation.md §4 for the why and the JSON schema.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lensrl.compare import stats as ss
from lensrl.compare.arms import MethodEvals, check_pooling, load_methods
from lensrl.eval.passk import DEFAULT_KS, bucket_masks, parse_endpoints, usable_ks
from lensrl.runs import clean


@dataclass(frozen=True)
class Settings:
    """How a comparison tests: resampling, levels, power target and equivalence margin.

    ``margin`` (a fraction: 0.02 = 2 points) adds a TOST to every cell; None leaves it out.
    ``seed`` seeds the bootstrap and the random relabellings (:func:`lensrl.compare.stats.rng_for`).
    """

    resamples: int = 2000
    permutations: int = 10000
    confidence: float = 0.95
    alpha: float = 0.05
    power: float = 0.8
    margin: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"--alpha must be in (0, 1), got {self.alpha}")
        if not 0 < self.power < 1:
            raise ValueError(f"--power must be in (0, 1), got {self.power}")
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence}")
        if self.margin is not None and not self.margin > 0:
            raise ValueError(f"--margin must be > 0 (percentage points), got {100 * self.margin}")


@dataclass(frozen=True)
class Test:
    """One cell's test: the estimate with its se and df, the p, and the effect size.

    ``p_min`` is the smallest p the design can give (:func:`lensrl.compare.stats.smallest_p`);
    ``extra`` holds design-specific keys (the paired design's seed sd of the differences).
    """

    estimate: float
    se: float
    df: float
    p: float
    p_min: float
    effect_size: float
    effect_size_kind: str
    extra: dict[str, Any] = field(default_factory=dict)


def paired_test(d: np.ndarray, t: Settings, rng: np.random.Generator) -> Test:
    """The seed-level test of paired differences ``d: (s,)`` (one per seed pair): exact
    sign-flip p, t se with ``s − 1`` df, and ``d_z``. Needs only the per-seed values."""
    d = np.asarray(d, dtype=float)
    est, se, df = ss.paired_se(d)
    sd = float(d.std(ddof=1)) if len(d) > 1 else math.nan
    return Test(
        estimate=float(est), se=float(se), df=float(df),
        p=float(ss.sign_flip_p(d, permutations=t.permutations, rng=rng)),
        p_min=ss.smallest_p(paired=True, s_a=len(d), s_b=len(d), permutations=t.permutations),
        effect_size=float(est) / sd if sd > 0 else math.nan,
        effect_size_kind="d_z: mean / sd of seed-pair differences",
        extra={"sd_seed_diff": sd},
    )


def unpaired_test(ya: np.ndarray, yb: np.ndarray, t: Settings, rng: np.random.Generator) -> Test:
    """The seed-level test of two arms' run scores with different seeds: whole-run
    permutation p, Welch's se and df, Cohen's d."""
    est, se, df = ss.welch_se(ya, yb)
    s_a, s_b = len(ya), len(yb)
    pooled_sd = math.sqrt(((s_a - 1) * ya.var(ddof=1) + (s_b - 1) * yb.var(ddof=1)) / (s_a + s_b - 2))
    return Test(
        estimate=float(est), se=float(se), df=float(df),
        p=float(ss.run_permutation_p(ya, yb, permutations=t.permutations, rng=rng)),
        p_min=ss.smallest_p(paired=False, s_a=s_a, s_b=s_b, permutations=t.permutations),
        effect_size=float(est) / pooled_sd if pooled_sd > 0 else math.nan,
        effect_size_kind="Cohen's d: Δ / pooled seed sd",
    )


def problem_test(xa: np.ndarray, xb: np.ndarray, t: Settings, rng: np.random.Generator) -> Test:
    """One seed in an arm: the per-problem permutation test of ``xa: (s_A, m)`` against ``xb``
    (these checkpoints differ), with the t se over the per-problem differences."""
    dj = xa.mean(axis=0) - xb.mean(axis=0)
    est, se, df = ss.paired_se(dj)
    sd = float(dj.std(ddof=1)) if len(dj) > 1 else math.nan
    return Test(
        estimate=float(est), se=float(se), df=float(df),
        p=ss.problem_permutation_p(xa, xb, permutations=t.permutations, rng=rng),
        p_min=1.0 / (1 + t.permutations),
        effect_size=float(est) / sd if sd > 0 else math.nan,
        effect_size_kind="d_z over problems: mean / sd of per-problem differences "
        "(these checkpoints)",
    )


def test_keys(test: Test, t: Settings, *, seeds: bool) -> dict[str, Any]:
    """The keys of a cell that follow from its test: ``p``, ``ci`` (the t interval at the
    seeds level; the caller sets the bootstrap one at the checkpoints level), ``direction``
    (``higher``/``lower`` where the one-sided level-α test, i.e. the ``1 − 2α`` t interval,
    excludes 0), ``p_t``, MDE (None when the exact test cannot reach α) and the TOST."""
    lo, hi = ss.t_interval(test.estimate, test.se, test.df, t.confidence)
    lo1, hi1 = ss.t_interval(test.estimate, test.se, test.df, 1 - 2 * t.alpha)
    out: dict[str, Any] = {
        "p": test.p,
        "ci": [float(lo), float(hi)] if seeds else None,
        "direction": "higher" if lo1 > 0 else "lower" if hi1 < 0 else None,
        "p_min": test.p_min,
        "p_t": float(ss.t_test_p(np.asarray(test.estimate), np.asarray(test.se), test.df)),
        "se": test.se,
        "df": test.df,
        "effect_size": test.effect_size,
        "effect_size_kind": test.effect_size_kind,
        "mde": None if test.p_min > t.alpha
        else ss.mde(test.se, test.df, alpha=t.alpha, power=t.power),
        **test.extra,
        "tost": None,
    }
    if t.margin is not None:
        p_tost = ss.tost_p(test.estimate, test.se, test.df, t.margin)
        out["tost"] = {"margin": t.margin, "p": p_tost, "equivalent": bool(p_tost < t.alpha)}
    return out


def _arm_block(ev: MethodEvals, y: np.ndarray, eval_var: np.ndarray) -> dict[str, Any]:
    """Per-seed values, seed sd and the variance split of one arm on one (bucket, k)."""
    total = float(y.var(ddof=1)) if len(y) > 1 else math.nan
    noise = float(eval_var.mean())
    seed_var = max(0.0, total - noise) if math.isfinite(total) and math.isfinite(noise) else math.nan
    return {
        "per_seed": [{"run": r.name, "seed": r.seed, "value": float(v)} for r, v in zip(ev.runs, y)],
        "sd_seed": math.sqrt(total) if math.isfinite(total) else math.nan,
        "var_split": {
            "total": total,
            "eval_noise": noise,
            "seed": seed_var,
            "seed_share": min(1.0, seed_var / total) if total > 0 else math.nan,
        },
    }


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


def _cell(a: MethodEvals, b: MethodEvals, k: int, mask: np.ndarray, xa: np.ndarray,
          xb: np.ndarray, *, level: str, pairing: list[int] | None, t: Settings,
          rng: np.random.Generator) -> dict[str, Any]:
    """The statistics of one (bucket, k) cell; ``xa``: ``(s_A, m)`` pass@k on its problems."""
    va, vb = a.eval_var(k, mask), b.eval_var(k, mask)
    ya, yb = xa.mean(axis=1), xb.mean(axis=1)
    lo, hi = ss.bootstrap_mean_ci(xa.mean(axis=0) - xb.mean(axis=0), resamples=t.resamples,
                                  confidence=t.confidence, rng=rng)
    ci_problems = [float(lo), float(hi)]
    if level == "seeds" and pairing is not None:
        test = paired_test(ya - yb[pairing], t, rng)
        sd = test.extra["sd_seed_diff"]
        test.extra["var_split_diff"] = {"total": sd**2, "eval_noise": float((va + vb[pairing]).mean())}
    elif level == "seeds":
        test = unpaired_test(ya, yb, t, rng)
    else:
        test = problem_test(xa, xb, t, rng)
    keys = test_keys(test, t, seeds=level == "seeds")
    if keys["ci"] is None:
        keys["ci"] = ci_problems
    arm_a, arm_b = _arm_block(a, ya, va), _arm_block(b, yb, vb)
    return {
        "problems": int(mask.sum()),
        "method_mean": float(ya.mean()),
        "baseline_mean": float(yb.mean()),
        "diff": float(ya.mean() - yb.mean()),
        "ci_problems": ci_problems,
        **keys,
        "per_seed": {"method": arm_a["per_seed"], "baseline": arm_b["per_seed"]},
        "sd_seed": {"method": arm_a["sd_seed"], "baseline": arm_b["sd_seed"]},
        "var_split": {"method": arm_a["var_split"], "baseline": arm_b["var_split"]},
    }


def compare(method: MethodEvals, baseline: MethodEvals, *, settings: Settings = Settings(),
            ks: Sequence[int] = DEFAULT_KS) -> dict[str, Any]:
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
    ks_ok = usable_ks(ks, [*a.n.ravel().tolist(), *b.n.ravel().tolist()])
    rows: list[dict[str, Any]] = []
    for k in ks_ok:
        xa_all, xb_all = a.pass_at_k(k), b.pass_at_k(k)
        for bucket, mask in bucket_masks(a.levels).items():
            rng = ss.rng_for(settings.seed, method.method, baseline.method, bucket, k)
            cell = _cell(a, b, k, mask, xa_all[:, mask], xb_all[:, mask], level=level,
                         pairing=pairing, t=settings, rng=rng)
            rows.append({"bucket": bucket, "k": k, **cell})
    order = {b: i for i, b in enumerate(bucket_masks(a.levels))}
    rows.sort(key=lambda r: (order[r["bucket"]], r["k"]))
    return {
        "method": method.method, "baseline": baseline.method,
        "level": level, "design": design, "claim": CLAIMS[level],
        "method_runs": [r.name for r in method.runs],
        "baseline_runs": [r.name for r in baseline.runs],
        "method_seeds": [r.seed for r in method.runs],
        "baseline_seeds": [r.seed for r in baseline.runs],
        "method_steps": list(method.steps), "baseline_steps": list(baseline.steps),
        "problems": len(common),
        "dropped_problems": len(method.ids) + len(baseline.ids) - 2 * len(common),
        "rows": [clean(r) for r in rows],
    }


CLAIMS = {
    "seeds": "seed-level test: is the method better than the baseline, over training seeds, "
    "on these problems",
    "checkpoints": "one seed in an arm: these rows test whether these two checkpoints differ; "
    "no claim about the method can be made (train at least 2 seeds per arm)",
}


def adjust_family(cells: Sequence[dict[str, Any]], *, role: str, method: str,
                  alpha: float) -> None:
    """Adjust the p of one family of cells in place: ``method`` ``holm`` (family-wise error
    ≤ α; sets ``p_holm``) or ``bh`` (false discovery rate ≤ α; sets ``q_bh``). Each cell gets
    ``role`` and ``significant`` (its adjusted p < α)."""
    p = [c["p"] for c in cells]
    adjusted = ss.holm(p) if method == "holm" else ss.bh(p)
    for cell, adj in zip(cells, adjusted):
        cell.update(role=role, p_holm=float(adj) if method == "holm" else None,
                    q_bh=float(adj) if method == "bh" else None, significant=bool(adj < alpha))


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
    adjust_family([r for r in rows if (r["bucket"], r["k"]) in wanted], role="primary",
                  method="holm", alpha=alpha)
    adjust_family([r for r in rows if (r["bucket"], r["k"]) not in wanted], role="secondary",
                  method="bh", alpha=alpha)


def pick_baseline(methods: Sequence[str]) -> str:
    """``grpo`` when present, else the first method given."""
    return "grpo" if "grpo" in methods else methods[0]


def compare_runs(
    run_dirs: Sequence[str | Path],
    baseline_dirs: Sequence[str | Path] = (),
    *,
    settings: Settings = Settings(),
    ks: Sequence[int] = DEFAULT_KS,
    primary: str | Sequence[tuple[str, int]] | None = None,
    step: int | None = None,
    group_by: str | None = None,
    allow_mixed: bool = False,
    ignore_keys: Sequence[str] = (),
    eval_name: str | None = None,
) -> dict[str, Any]:
    """Every arm in ``run_dirs`` against the baseline (``baseline_dirs``' arm, else
    :func:`pick_baseline`). Returns the JSON written by ``--out`` (docs/evaluation.md §4).

    Raises:
        ValueError: fewer than two arms, a bad ``--primary``, or runs that should not be pooled
            (:mod:`lensrl.compare.pooling`; ``ignore_keys`` are config keys not checked) unless
            ``allow_mixed``, which records them as ``warnings`` instead.
    """
    prim = parse_endpoints(primary) if isinstance(primary, str | None) else list(primary)
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
    comparisons = [compare(m, baseline, settings=settings, ks=ks) for m in others]
    adjust(comparisons, prim, alpha=settings.alpha)
    return {
        "schema": 2, "baseline": baseline.method, "group_by": group_by or "algo.estimator",
        "primary": [f"{b}:{k}" for b, k in prim],
        "alpha": settings.alpha, "power": settings.power, "margin": settings.margin,
        "warnings": warnings, "test": test_description(settings), "comparisons": comparisons,
    }


def test_description(t: Settings) -> dict[str, Any]:
    """What each number means, stored in the JSON beside them."""
    return {
        "difference": "mean over seeds of the run score (mean pass@k over the bucket's "
        "problems), method − baseline",
        "p_seeds": "exact sign-flip test over seed pairs (paired by run.seed), else whole-run "
        f"permutation test; {t.permutations} random relabellings when there are more than "
        f"{ss.MAX_RELABELLINGS}; two-sided",
        "ci_seeds": "t interval of the seed-level differences (paired) or Welch's (unpaired)",
        "direction": "higher / lower where the one-sided level-alpha t test rejects 0 (the "
        "1 - 2 alpha t interval excludes 0); null otherwise",
        "p_checkpoints": "per-problem permutation test, labels exchanged within problems, "
        f"{t.permutations} permutations (these checkpoints differ)",
        "ci_problems": f"paired percentile bootstrap over problems, {t.resamples} resamples, "
        "runs held fixed",
        "multiplicity": "Holm over the --primary rows; Benjamini-Hochberg q over the others",
        "mde": "true difference the t test detects with the stated power at alpha; null when "
        "the randomization test cannot reach alpha with this many seeds",
        "seed": t.seed,
        "confidence": t.confidence,
    }
