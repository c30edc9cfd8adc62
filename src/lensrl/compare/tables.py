"""Every table and number format of a comparison: ``lensrl compare``'s table (the ``--out``
JSON, docs/evaluation.md §4), ``lensrl plan``'s, and the number style the study's tables share.

Compare: primary endpoints first, then the other cells; every number a reader needs to judge a
row: the primary p and CI, the adjusted p (Holm) or q (BH), effect size, seed sds, MDE and TOST.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from lensrl.compare.stats import smallest_p
from lensrl.eval.passk import bucket_label

# One style for every number a table prints (lensrl compare, lensrl plan, the study's tables):
# differences and CIs in percentage points with 2 decimals, p-values with 4 decimals.


def pp(x: float | None, *, signed: bool = True) -> str:
    """A fraction in percentage points: ``-0.0018`` → ``-0.18``; None → ``–``."""
    if x is None or not math.isfinite(x):
        return "–"
    return f"{100 * x:+.2f}" if signed else f"{100 * x:.2f}"


def pct(x: float | None) -> str:
    """A fraction as a percentage: ``0.4512`` → ``45.12%``; None → ``–``."""
    return "–" if x is None or not math.isfinite(x) else f"{100 * x:.2f}%"


def p_text(p: float | None) -> str:
    """A p-value: 4 decimals, ``<1e-4`` below that; None → ``–``."""
    if p is None:
        return "–"
    return f"{p:.4f}" if p >= 1e-4 else "<1e-4"


def ci_text(ci: Sequence[float] | None) -> str:
    """A CI in percentage points: ``[-0.67, +0.30]``; None → ``–``."""
    return "–" if not ci or None in ci else f"[{pp(ci[0])}, {pp(ci[1])}]"


def _num(x: float | None, scale: float = 1.0, fmt: str = "+.2f") -> str:
    return "–" if x is None else format(scale * x, fmt)


def _seeds(runs: Sequence[str], seeds: Sequence[int | None] | None) -> str:
    return f"{len(runs)} seed{'' if len(runs) == 1 else 's'} {seeds}"


def _steps(steps: Sequence[int]) -> str:
    return f"step {steps[0]}" if len(set(steps)) == 1 else f"steps {list(steps)}"


def row_cells(row: dict[str, Any]) -> dict[str, str]:
    """The printable cells of one row (shared by the table and the report)."""
    adj = (
        f"H {p_text(row['p_holm'])}"
        if row.get("role") == "primary"
        else f"q {p_text(row.get('q_bh'))}"
        if row.get("q_bh") is not None
        else "–"
    )
    sig = row.get("significant")
    if sig:
        mde = "–"
    elif row.get("mde") is None:
        mde = "∞"  # the randomization test cannot reach α with this many seeds
    elif not (math.isfinite(row["mde"]) and row["mde"] > 0):
        mde = "–"  # no spread between seeds or problems: a t test has no MDE (not "any")
    else:
        mde = f"{100 * row['mde']:.2f}"
    tost = row.get("tost")
    sd = row.get("sd_seed") or {}
    return {
        "adj": adj + (" *" if sig else ""),
        "effect": _num(row.get("effect_size")),
        "sd": f"{_num(sd.get('method'), 100, '.2f')}/{_num(sd.get('baseline'), 100, '.2f')}",
        "mde": mde,
        "tost": "–"
        if tost is None
        else f"{p_text(tost['p'])}{' equiv.' if tost['equivalent'] else ''}",
    }


def format_table(result: dict[str, Any]) -> str:
    """A readable plain-text table (pass@k in %, Δ, CIs, sds and MDE in percentage points).

    Primary rows come first, in their own block, then every other cell.
    """
    lines: list[str] = []
    for cmp in result["comparisons"]:
        lines.append(
            f"{cmp['method']} ({_seeds(cmp['method_runs'], cmp.get('method_seeds'))}, "
            f"{_steps(cmp['method_steps'])}) vs {cmp['baseline']} "
            f"({_seeds(cmp['baseline_runs'], cmp.get('baseline_seeds'))}, "
            f"{_steps(cmp['baseline_steps'])}) on {cmp['problems']} problems"
        )
        lines.append(f"{cmp.get('design', '')}: {cmp.get('claim', '')}")
        ci_name = "95% CI seeds" if cmp.get("level") == "seeds" else "95% CI probl."
        head = (
            f"{'bucket':<11}{'n':>5}{'k':>4}{cmp['method'][:8]:>9}{cmp['baseline'][:8]:>9}"
            f"{'Δ (pp)':>9}  {ci_name:<18}{'p':>8}  {'adjusted':<12}{'d':>7}"
            f"{'seed sd':>13}{'MDE':>7}  TOST"
        )
        groups = [
            ("primary endpoints (Holm-adjusted p, H)", "primary"),
            ("all other cells (Benjamini-Hochberg q)", "secondary"),
        ]
        for title, role in groups:
            rows = [r for r in cmp["rows"] if r.get("role", "secondary") == role]
            if not rows:
                continue
            lines += [f"-- {title}", head]
            for row in rows:
                c = row_cells(row)
                lines.append(
                    f"{bucket_label(row['bucket']):<11}{row['problems']:>5}{row['k']:>4}"
                    f"{pct(row['method_mean']):>9}{pct(row['baseline_mean']):>9}"
                    f"{100 * row['diff']:>+9.2f}  {ci_text(row['ci']):<18}{p_text(row['p']):>8}  "
                    f"{c['adj']:<12}{c['effect']:>7}{c['sd']:>13}{c['mde']:>7}  {c['tost']}"
                )
        p_min = max((r.get("p_min", 0.0) for r in cmp["rows"]), default=0.0)
        if p_min > result.get("alpha", 0.05):
            lines.append(
                f"The smallest p this design can give is {p_min:.3g} > α = "
                f"{result.get('alpha', 0.05)}: no row can be significant (MDE ∞). "
                "`lensrl plan` says how many seeds are needed."
            )
        lines.append("")
    lines += _footer(result)
    return "\n".join(lines)


def _footer(result: dict[str, Any]) -> list[str]:
    test = result["test"]
    lines = [
        f"Δ: {test['difference']}.",
        f"Seeds level: p = {test.get('p_seeds')}; CI = {test.get('ci_seeds')}.",
        f"Checkpoints level: p = {test.get('p_checkpoints')}; CI = {test.get('ci_problems')}.",
        f"{test.get('multiplicity')}; * = significant at α = {result.get('alpha')} after "
        "adjustment. d: effect size. seed sd: method/baseline sd of the run scores (pp).",
        f"MDE: {test.get('mde')} (power {result.get('power')}).",
    ]
    if result.get("margin") is None:
        lines.append(
            "A non-significant row is not evidence of no difference: give --margin (pp) for "
            "an equivalence test (TOST)."
        )
    else:
        lines.append(
            f"TOST: p of |Δ| < {100 * result['margin']:.2f} pp; 'equiv.' when below α."
        )
    disagree = disagreements(result)
    if disagree:
        lines.append(
            f"{', '.join(disagree)}: the CI and the p disagree about 0. They come from different "
            "methods (a t interval or a bootstrap, against an exact sign-flip or permutation "
            "test), which can part near the threshold, and with few seeds the exact test cannot "
            "go below its smallest p; the p (after adjustment) decides significance."
        )
    if any(r.get("mde") is not None and not r.get("significant")
           and not (math.isfinite(r["mde"]) and r["mde"] > 0)
           for c in result["comparisons"] for r in c["rows"]):
        lines.append("MDE –: undefined, the scores do not vary between seeds or problems.")
    for w in result.get("warnings", []):
        lines.append(f"WARNING (--allow-mixed): {w}")
    return lines


def disagreements(result: dict[str, Any]) -> list[str]:
    """``method bucket:k`` of rows whose CI excludes 0 while p >= α, or the reverse."""
    alpha = result.get("alpha", 0.05)
    out = []
    for cmp in result["comparisons"]:
        for r in cmp["rows"]:
            ci, p = r.get("ci"), r.get("p")
            if ci is None or p is None:
                continue
            excludes = ci[0] > 0 or ci[1] < 0
            if excludes != (p < alpha):
                out.append(f"{cmp['method']} {r['bucket']}:{r['k']}")
    return out


def format_plan(result: dict[str, Any]) -> str:
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
    alpha = result["alpha"]
    floor = next(s for s in range(2, 64) if smallest_p(paired=True, s_a=s, s_b=s) <= alpha)
    lines.append(
        f"sds in pp. paired: runs of both arms share run.seed (needs ≥ {floor} pairs for "
        f"p < {alpha} at all: the exact sign-flip test's smallest p); unpaired: seeds per arm."
    )
    return "\n".join(lines)
