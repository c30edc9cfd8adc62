"""``lensrl compare``: paired comparison of methods across problems and seeds.

Runs are grouped into methods by ``cfg["algo"]["estimator"]``; runs of one method are seed
replicates. Every run's evaluation (its latest ``eval/<step>.json`` unless ``--step``) is paired
with the others by problem id, on the problems that all of them evaluated.

For a method A against a baseline B, per bucket and k, with ``X_A[r, j]`` the pass@k of problem j
in seed r:

* difference ``Δ = mean_j ( mean_r X_A[r, j] − mean_r X_B[r, j] )``;
* 95% CI: a paired percentile bootstrap over problems (each replicate resamples the problems,
  the same ones for A and B), the seed-averaged values held fixed: it matches the p-value;
* 95% CI incl. seeds: the same, also resampling each method's seeds with replacement, so that
  run-to-run variation counts too (problems and seeds are crossed: Owen's pigeonhole bootstrap);
* p-value: a paired permutation test over problems. Under H0 the method labels are exchangeable
  within each problem, so each replicate reassigns, independently for every problem, the
  ``s_A + s_B`` per-seed values to A and B (with one seed each this is the sign-flip test on
  per-problem differences); two-sided, ``p = (1 + #{|Δ*| ≥ |Δ|}) / (1 + permutations)``.

See docs/evaluation.md for why and for what it does not cover.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lensrl.eval.evaluate import read_eval
from lensrl.eval.passk import (
    DEFAULT_KS,
    bucket_label,
    bucket_masks,
    pass_at_k_per_problem,
    resample_counts,
    usable_ks,
)
from lensrl.eval.runs import RunInfo, run_info


@dataclass(frozen=True)
class MethodEvals:
    """The evaluations of one method's seeds on a common, ordered set of ``m`` problems.

    Fields:
        method: estimator name.
        runs: the ``s`` runs (seed replicates).
        steps: ``(s,)`` the evaluated step of each run.
        ids: ``(m,)`` problem ids.
        levels: ``(m,)`` levels (None where unknown).
        n, c: ``(s, m)`` samples and correct answers.
    """

    method: str
    runs: tuple[RunInfo, ...]
    steps: tuple[int, ...]
    ids: tuple[str, ...]
    levels: tuple[int | None, ...]
    n: np.ndarray
    c: np.ndarray

    def pass_at_k(self, k: int, mask: np.ndarray | None = None) -> np.ndarray:
        """``(s, m')`` per-seed, per-problem pass@k (on ``mask``'s problems)."""
        out = np.stack([pass_at_k_per_problem(n, c, k) for n, c in zip(self.n, self.c)])
        return out if mask is None else out[:, mask]

    def restrict(self, ids: Sequence[str]) -> MethodEvals:
        pos = {pid: j for j, pid in enumerate(self.ids)}
        idx = [pos[i] for i in ids]
        return MethodEvals(
            method=self.method,
            runs=self.runs,
            steps=self.steps,
            ids=tuple(ids),
            levels=tuple(self.levels[j] for j in idx),
            n=self.n[:, idx],
            c=self.c[:, idx],
        )


def load_methods(
    run_dirs: Sequence[str | Path], *, step: int | None = None
) -> dict[str, MethodEvals]:
    """Group runs by estimator and align each method's seeds on their common problems."""
    grouped: dict[str, list[tuple[RunInfo, dict[str, Any]]]] = {}
    for d in run_dirs:
        info = run_info(d)
        grouped.setdefault(info.method, []).append((info, read_eval(d, step)))
    out: dict[str, MethodEvals] = {}
    for method, items in grouped.items():
        tables = [{str(p["id"]): p for p in ev["problems"]} for _, ev in items]
        first = [str(p["id"]) for p in items[0][1]["problems"]]
        common = [pid for pid in first if all(pid in t for t in tables)]
        if not common:
            raise ValueError(f"the runs of method {method!r} share no evaluated problem")
        out[method] = MethodEvals(
            method=method,
            runs=tuple(info for info, _ in items),
            steps=tuple(int(ev["step"]) for _, ev in items),
            ids=tuple(common),
            levels=tuple(tables[0][pid].get("level") for pid in common),
            n=np.array([[int(t[pid]["n"]) for pid in common] for t in tables]),
            c=np.array([[int(t[pid]["c"]) for pid in common] for t in tables]),
        )
    return out


# Above this many labellings per problem, permute directly instead of tabulating them all.
MAX_SUBSETS = 4096


def _rng(seed: int, *tags: object) -> np.random.Generator:
    return np.random.default_rng([seed, *(zlib.crc32(str(t).encode()) for t in tags)])


def _seed_mix(
    rng: np.random.Generator, x: np.ndarray, resamples: int, resample_seeds: bool
) -> np.ndarray:
    """``(B, m)`` or ``(1, m)``: the per-problem mean over seeds, resampled when asked."""
    s = x.shape[0]
    if not resample_seeds or s == 1:
        mean: np.ndarray = x.mean(axis=0, keepdims=True)
        return mean
    counts = resample_counts(rng, s, resamples)  # (B, s)
    mixed: np.ndarray = counts @ x / s
    return mixed


def bootstrap_ci(
    a: np.ndarray,
    b: np.ndarray | None = None,
    *,
    resamples: int = 2000,
    confidence: float = 0.95,
    resample_seeds: bool = False,
    rng: np.random.Generator,
) -> tuple[float, float]:
    """Percentile CI of ``mean(a)``, or of the paired ``Δ`` when ``b`` is given.

    ``a``: ``(s_A, m)``; ``b``: ``(s_B, m)`` on the same problems. Each replicate resamples the
    problems (the same ones for A and B: paired); with ``resample_seeds`` it also resamples each
    method's seeds (problems × seeds are crossed, so this is Owen's "pigeonhole" bootstrap,
    somewhat conservative).
    """
    m = a.shape[1]
    w = resample_counts(rng, m, resamples)  # (B, m)
    y = _seed_mix(rng, a, resamples, resample_seeds)
    if b is not None:
        y = y - _seed_mix(rng, b, resamples, resample_seeds)
    est = (w * y).sum(axis=1) / m
    alpha = 1.0 - confidence
    lo, hi = np.quantile(est, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def permutation_p(
    a: np.ndarray,
    b: np.ndarray,
    *,
    permutations: int = 10000,
    rng: np.random.Generator,
) -> float:
    """Two-sided p of the paired permutation test of ``Δ`` (labels exchanged within problems)."""
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


def compare(
    method: MethodEvals,
    baseline: MethodEvals,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    resamples: int = 2000,
    permutations: int = 10000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """One method against a baseline, per bucket and k, on the problems both evaluated."""
    base_ids = set(baseline.ids)
    common = [pid for pid in method.ids if pid in base_ids]
    if not common:
        raise ValueError(f"{method.method!r} and {baseline.method!r} share no evaluated problem")
    a, b = method.restrict(common), baseline.restrict(common)
    ks_ok = usable_ks(ks, [*a.n.ravel().tolist(), *b.n.ravel().tolist()])
    rows: list[dict[str, Any]] = []
    for bucket, mask in bucket_masks(a.levels).items():
        for k in ks_ok:
            xa, xb = a.pass_at_k(k, mask), b.pass_at_k(k, mask)
            rng = _rng(seed, method.method, baseline.method, bucket, k)
            lo, hi = bootstrap_ci(xa, xb, resamples=resamples, confidence=confidence, rng=rng)
            ci_seeds = None
            if max(xa.shape[0], xb.shape[0]) > 1:
                ci_seeds = list(
                    bootstrap_ci(
                        xa,
                        xb,
                        resamples=resamples,
                        confidence=confidence,
                        resample_seeds=True,
                        rng=rng,
                    )
                )
            rows.append(
                {
                    "bucket": bucket,
                    "k": k,
                    "problems": int(mask.sum()),
                    "method_mean": float(xa.mean()),
                    "baseline_mean": float(xb.mean()),
                    "diff": float(xa.mean(axis=0).mean() - xb.mean(axis=0).mean()),
                    "ci": [lo, hi],
                    "ci_seeds": ci_seeds,
                    "p": permutation_p(xa, xb, permutations=permutations, rng=rng),
                }
            )
    return {
        "method": method.method,
        "baseline": baseline.method,
        "method_runs": [r.name for r in method.runs],
        "baseline_runs": [r.name for r in baseline.runs],
        "method_steps": list(method.steps),
        "baseline_steps": list(baseline.steps),
        "problems": len(common),
        "dropped_problems": len(method.ids) + len(baseline.ids) - 2 * len(common),
        "rows": rows,
    }


def method_summary(
    evals: MethodEvals,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, dict[str, Any]]]:
    """pass@k of one method pooled over its seeds, with the two-level bootstrap CI.

    Same shape as an eval JSON's ``pass_at_k``: ``{bucket: {str(k): {mean, ci, problems}}}``.
    """
    out: dict[str, dict[str, dict[str, Any]]] = {}
    ks_ok = usable_ks(ks, evals.n.ravel().tolist())
    for bucket, mask in bucket_masks(evals.levels).items():
        out[bucket] = {}
        for k in ks_ok:
            x = evals.pass_at_k(k, mask)
            rng = _rng(seed, evals.method, bucket, k)
            lo, hi = bootstrap_ci(x, resamples=resamples, confidence=confidence, rng=rng)
            out[bucket][str(k)] = {
                "mean": float(x.mean()),
                "ci": [lo, hi],
                "problems": int(mask.sum()),
            }
    return out


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
) -> dict[str, Any]:
    """Every method in ``run_dirs`` against the baseline (``baseline_dirs``' method, else
    :func:`pick_baseline`). Returns the JSON written by ``--out``."""
    methods = load_methods(list(run_dirs), step=step)
    if baseline_dirs:
        base_methods = load_methods(list(baseline_dirs), step=step)
        if len(base_methods) != 1:
            raise ValueError(f"--baseline runs span several methods: {sorted(base_methods)}")
        baseline = next(iter(base_methods.values()))
        # The baseline's own seeds may also be listed among the runs: compare the others only.
        others = [m for name, m in methods.items() if name != baseline.method]
    else:
        if len(methods) < 2:
            raise ValueError(
                f"need runs of at least two methods (estimators), got {sorted(methods)}"
            )
        baseline = methods[pick_baseline(list(methods))]
        others = [m for name, m in methods.items() if name != baseline.method]
    if not others:
        raise ValueError("nothing to compare against the baseline")
    comparisons = [
        compare(
            m,
            baseline,
            ks=ks,
            resamples=resamples,
            permutations=permutations,
            confidence=confidence,
            seed=seed,
        )
        for m in others
    ]
    return {
        "baseline": baseline.method,
        "test": {
            "difference": "mean over problems of (mean over seeds of method − same for baseline)",
            "ci": f"paired percentile bootstrap over problems, {resamples} resamples",
            "ci_seeds": "the same, also resampling each method's seeds (pigeonhole bootstrap)",
            "p": f"paired permutation test within problems, {permutations} permutations, two-sided",
            "confidence": confidence,
            "seed": seed,
        },
        "comparisons": comparisons,
    }


def _pct(x: float) -> str:
    return "nan" if math.isnan(x) else f"{100 * x:6.2f}"


def _p(p: float) -> str:
    return f"{p:.4f}" if p >= 1e-4 else "<1e-4"


def _ci(ci: Sequence[float] | None) -> str:
    return "" if ci is None else f"[{100 * ci[0]:+6.2f}, {100 * ci[1]:+6.2f}]"


def format_table(result: dict[str, Any]) -> str:
    """A readable plain-text table (pass@k in %, Δ and CIs in percentage points)."""
    lines: list[str] = []
    for cmp in result["comparisons"]:
        lines.append(
            f"{cmp['method']} ({len(cmp['method_runs'])} seeds, steps {cmp['method_steps']}) vs "
            f"{cmp['baseline']} ({len(cmp['baseline_runs'])} seeds, steps "
            f"{cmp['baseline_steps']}) on {cmp['problems']} paired problems"
        )
        lines.append(
            f"{'bucket':<7}{'n':>5}{'k':>4}{cmp['method'][:8]:>9}{cmp['baseline'][:8]:>9}"
            f"{'Δ (pp)':>9}  {'95% CI':<18}{'p':>8}  95% CI incl. seeds"
        )
        for row in cmp["rows"]:
            lines.append(
                f"{bucket_label(row['bucket']):<7}{row['problems']:>5}{row['k']:>4}"
                f"{_pct(row['method_mean']):>9}{_pct(row['baseline_mean']):>9}"
                f"{100 * row['diff']:>+9.2f}  {_ci(row['ci']):<18}{_p(row['p']):>8}  "
                f"{_ci(row.get('ci_seeds'))}"
            )
        lines.append("")
    test = result["test"]
    lines.append(f"Δ: {test['difference']}.")
    lines.append(f"CI and p: {test['ci']}; {test['p']}. No correction for multiple comparisons.")
    lines.append(f"CI incl. seeds: {test['ci_seeds']}.")
    return "\n".join(lines)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run folders (seeds = replicates)")
    parser.add_argument(
        "--baseline",
        nargs="+",
        default=[],
        metavar="RUN",
        help="baseline run folders (default: the grpo runs, else the first method)",
    )
    parser.add_argument(
        "--step",
        type=int,
        default=None,
        help="evaluated step to compare (default: each run's latest eval)",
    )
    parser.add_argument("--ks", type=int, nargs="+", default=list(DEFAULT_KS))
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")
    parser.add_argument("--permutations", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0, help="seed of bootstrap and permutations")
    parser.add_argument("--out", type=Path, default=None, help="also write the result as JSON")


def run(args: argparse.Namespace) -> int:
    try:
        result = compare_runs(
            args.runs,
            args.baseline,
            step=args.step,
            ks=args.ks,
            resamples=args.resamples,
            permutations=args.permutations,
            seed=args.seed,
        )
    except (FileNotFoundError, ValueError) as err:
        print(f"lensrl compare: {err}", file=sys.stderr)
        return 2
    print(format_table(result))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0
