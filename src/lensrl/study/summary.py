"""``results/study/summary.json``: the study's numbers, from run folders only (lensrl.runs).

Shape (pass@k as fractions; ``ci95`` is ``[lo, hi]`` or null where there is a single seed)::

    {"setting": {...}, "complete": bool,
     "primary": {"comparison": "lens_vs_grpo", "correction": "holm", "tost_margin": 0.02,
                 "endpoints": [{"endpoint": "all:8", "diff", "ci95", "ci95_seed_t", "p_value",
                                "p_holm", "tost": {"margin", "p", "equivalent"}}, ...]},
     "methods": {arm: {"estimator", "alpha", "seeds": [0, 1, ...],
                       "overall": {"pass@k": {"mean", "ci95", "sd_seeds"}},
                       "by_level": {bucket: {"pass@k": {...}}},
                       "adv_share_negative": {"mean", "ci95"}, "frac_negative": {...}}},
     "paired": {"<arm>_vs_<baseline>": {"pairs": n, "overall": {"pass@k": cell},
                                        "by_level": {bucket: {"pass@k": cell}}}},
     "alpha_sweep": {"<α>": {"arm", "alpha", "seeds", "adv_share_negative", "overall",
                             "vs_baseline"}},
     "mde": {"all:8": {"pairs", "sd_diff", "mde", "target_diff", "seeds_needed"}, ...},
     "cost": {arm: {"runs", "train_s", "eval_s", "total_s"}, "warmup_s": ...}}

A paired ``cell`` is ``{"diff", "ci95", "p_value", "p_holm", "q_bh", "ci95_seed_t",
"per_seed_diff", "mde_seed_t", "tost", ...}`` (``mde_seed_t``: the smallest difference a paired
t-test over these seeds detects with ``stats.power``; ``tost``: equivalence within
``stats.tost_margin``). ``diff``, ``ci95`` and ``p_value`` are the ``diff``, ``ci`` and ``p``
of :func:`lensrl.eval.compare.compare_runs` (whatever test it implements; its description is
kept under ``setting.compare_test``), and any newer key of its rows (``mde``, ``per_seed``,
``ci_seeds``...) is passed through. ``ci95_seed_t`` is the study's own seed-level check: the
t-interval of the mean of the per-seed paired differences. ``p_holm`` is Holm over the declared
primary endpoints of the primary comparison; every other cell gets a Benjamini–Hochberg
``q_bh`` over all of them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from lensrl.eval.passk import ALL, DEFAULT_KS, bucket_masks, pass_at_k_per_problem
from lensrl.study.config import StudyConfig, resolve_alpha

Cell = dict[str, Any]


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else float(x)


def t_interval(values: Sequence[float], confidence: float) -> list[float] | None:
    """The t-based CI of the mean of ``values`` (None with fewer than two)."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return None
    half = stats.t.ppf(0.5 + confidence / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    return [float(v.mean() - half), float(v.mean() + half)]


def holm(p: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error), in the input order."""
    order = np.argsort(p)
    m, out, running = len(p), [0.0] * len(p), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(p[i])))
        out[int(i)] = running
    return out


def tost(diffs: Sequence[float], margin: float) -> dict[str, Any]:
    """Two one-sided paired t-tests of |mean diff| < ``margin``; ``p`` is the larger of the two."""
    d = np.asarray(diffs, dtype=float)
    if len(d) < 2 or d.std(ddof=1) == 0:
        return {"margin": margin, "p": None, "equivalent": None}
    lower = stats.ttest_1samp(d, -margin, alternative="greater").pvalue
    upper = stats.ttest_1samp(d, margin, alternative="less").pvalue
    p = float(max(lower, upper))
    return {"margin": margin, "p": p, "equivalent": p < 0.05}


def paired_t_power(delta: float, sd: float, n: int, alpha: float = 0.05) -> float:
    """Power of the two-sided paired t-test with ``n`` pairs for a true mean difference."""
    if n < 2 or sd <= 0:
        return float("nan")
    df, nc = n - 1, delta / (sd / math.sqrt(n))
    crit = stats.t.ppf(1 - alpha / 2, df)
    lower = float(stats.nct.cdf(-crit, df, nc))  # scipy returns NaN where it underflows
    return float(stats.nct.sf(crit, df, nc)) + (lower if math.isfinite(lower) else 0.0)


def mde(sd: float, n: int, power: float, alpha: float = 0.05) -> float | None:
    """Smallest mean difference the paired t-test detects with ``power`` at ``n`` pairs."""
    if n < 2 or not sd > 0:
        return None
    from scipy.optimize import brentq

    hi = 20 * sd
    while paired_t_power(hi, sd, n, alpha) < power:  # 2 pairs (df 1) need more than 20 sd
        hi *= 4
        if hi > 1e4 * sd:
            return None
    return float(brentq(lambda d: paired_t_power(d, sd, n, alpha) - power, 1e-6 * sd, hi))


def seeds_needed(sd: float, delta: float, power: float, alpha: float = 0.05,
                 cap: int = 1000) -> int | None:
    """Pairs needed to detect ``delta`` with ``power`` (None beyond ``cap``)."""
    if not sd > 0:
        return None
    for n in range(2, cap + 1):
        if paired_t_power(delta, sd, n, alpha) >= power:
            return n
    return None


# --- reading runs ---------------------------------------------------------------------------


def seed_values(run_dir: Path, step: int, ks: Sequence[int]) -> dict[str, dict[int, float]]:
    """``{bucket: {k: pass@k}}`` of one run's evaluation at ``step`` (mean over problems)."""
    from lensrl.runs import read_eval

    ev = read_eval(run_dir, step)
    n = [int(p["n"]) for p in ev["problems"]]
    c = [int(p["c"]) for p in ev["problems"]]
    out: dict[str, dict[int, float]] = {}
    for bucket, mask in bucket_masks([p.get("level") for p in ev["problems"]]).items():
        out[bucket] = {k: float(pass_at_k_per_problem(n, c, k)[mask].mean())
                       for k in ks if k <= min(n)}
    return out


def metric_mean(run_dir: Path, key: str, first_only: bool = False) -> float | None:
    """Mean of a metrics.jsonl key over the run's steps (or its first step)."""
    from lensrl.runs import read_metrics

    vals = [float(r[key]) for r in read_metrics(run_dir)
            if isinstance(r.get(key), int | float) and math.isfinite(r[key])]
    if not vals:
        return None
    return vals[0] if first_only else float(np.mean(vals))


def _stat(values: list[float], confidence: float) -> dict[str, Any]:
    """Mean, t-interval over seeds (clipped to [0, 1]: every quantity here is a fraction) and sd."""
    ci = t_interval(values, confidence)
    return {"mean": _finite(float(np.mean(values))) if values else None,
            "ci95": None if ci is None else [max(ci[0], 0.0), min(ci[1], 1.0)],
            "sd_seeds": float(np.std(values, ddof=1)) if len(values) > 1 else None}


def method_block(values: dict[int, dict[str, dict[int, float]]],
                 confidence: float) -> dict[str, Any]:
    """``overall`` and ``by_level`` of one arm from its per-seed values."""
    seeds = sorted(values)
    buckets = list(values[seeds[0]]) if seeds else []
    table = {b: {f"pass@{k}": _stat([values[s][b][k] for s in seeds], confidence)
                 for k in values[seeds[0]][b]} for b in buckets}
    return {"overall": table.get(ALL, {}), "by_level": {b: t for b, t in table.items() if b != ALL}}


def seed_plan(cfg: StudyConfig) -> list[str]:
    """For each primary endpoint, from the paired seeds finished so far (the pilot first): the
    sd of the paired differences and the seeds needed for ``stats.target_diff`` at
    ``stats.power`` (the planner of issue 15, when merged, is the reference)."""
    st, steps = cfg.stats, cfg.rl_steps
    finished = _finished(cfg, steps)
    a, b = finished.get(st.primary_arm, {}), finished.get(st.baseline, {})
    pairs = sorted(set(a) & set(b))
    if len(pairs) < 2:
        return [f"seed plan: needs 2 paired seeds of {st.primary_arm} and {st.baseline} "
                f"(have {len(pairs)})"]
    ks = sorted({k for _, k in st.parsed_endpoints()})
    va = {s: seed_values(a[s], steps, ks) for s in pairs}
    vb = {s: seed_values(b[s], steps, ks) for s in pairs}
    lines = []
    for bucket, k in st.parsed_endpoints():
        diffs = [va[s][bucket][k] - vb[s][bucket][k] for s in pairs]
        sd = float(np.std(diffs, ddof=1))
        need = seeds_needed(sd, st.target_diff, st.power)
        lines.append(f"seed plan {bucket}:{k}: sd of paired differences {100 * sd:.2f} pp over "
                     f"{len(pairs)} pairs -> {need or '>1000'} seeds for "
                     f"{100 * st.target_diff:g} pp at {st.power:.0%} power "
                     f"(config: {cfg.arms[st.primary_arm].seeds})")
    return lines


# --- the summary ----------------------------------------------------------------------------


def _finished(cfg: StudyConfig, steps: int) -> dict[str, dict[int, Path]]:
    out: dict[str, dict[int, Path]] = {}
    for arm, spec in cfg.arms.items():
        for seed in range(spec.seeds):
            d = cfg.run_dir(arm, seed)
            if (d / "eval" / f"{steps}.json").is_file():
                out.setdefault(arm, {})[seed] = d
    return out


def _compare_cells(cfg: StudyConfig, a: dict[int, Path], b: dict[int, Path], step: int,
                   va: dict[int, Any], vb: dict[int, Any]) -> dict[str, Any]:
    """One arm against another through lensrl.eval.compare.compare_runs, on the seeds both
    have: every number of a cell (the test, both CIs, the TOST, the MDE) comes from the same
    seed pairs, even when one arm has more seeds (the baseline's extra seeds, or a study
    stopped part-way, would otherwise make compare_runs fall back to an unpaired test)."""
    from lensrl.compare.cells import Settings, compare_runs

    st = cfg.stats
    pairs = sorted(set(a) & set(b))
    settings = Settings(resamples=st.resamples, permutations=st.permutations,
                        confidence=st.confidence, seed=0)
    result = compare_runs([str(a[s]) for s in pairs], [str(b[s]) for s in pairs], step=step,
                          ks=DEFAULT_KS, settings=settings)
    block: dict[str, Any] = {"pairs": len(pairs), "overall": {}, "by_level": {}}
    for row in result["comparisons"][0]["rows"]:
        bucket, k = row["bucket"], int(row["k"])
        diffs = [va[s][bucket][k] - vb[s][bucket][k] for s in pairs]
        cell = {key: v for key, v in row.items() if key not in ("bucket", "k")}
        cell.update({"diff": row["diff"], "ci95": row["ci"], "p_value": row["p"],
                     "p_holm": None, "q_bh": None, "per_seed_diff": diffs,
                     "ci95_seed_t": t_interval(diffs, st.confidence)})
        # every cell can answer "not detected" (with its MDE) or "no difference" (TOST)
        sd = float(np.std(diffs, ddof=1)) if len(diffs) >= 2 else math.nan
        cell["mde_seed_t"] = _finite(mde(sd, len(diffs), st.power)) if math.isfinite(sd) else None
        if cell.get("tost") is None and len(diffs) >= 2:
            cell["tost"] = tost(diffs, st.tost_margin)
        target = block["overall"] if bucket == ALL else block["by_level"].setdefault(bucket, {})
        target[f"pass@{k}"] = cell
    block["test"] = result.get("test", {})
    return block


def _adjust(paired: dict[str, Any], primary: str, endpoints: list[tuple[str, int]]) -> None:
    """Holm over the primary cells, BH over every other cell, in place."""
    prim: list[Cell] = []
    rest: list[Cell] = []
    for name, block in paired.items():
        cells = [(ALL, block["overall"])] + list(block["by_level"].items())
        for bucket, table in cells:
            for key, cell in table.items():
                is_primary = name == primary and (bucket, int(key[5:])) in endpoints
                (prim if is_primary else rest).append(cell)
    for cell, p in zip(prim, holm([c["p_value"] for c in prim])):
        cell["p_holm"] = p
    if rest:
        q = stats.false_discovery_control([c["p_value"] for c in rest], method="bh")
        for cell, qv in zip(rest, q):
            cell["q_bh"] = float(qv)


def _primary_and_mde(cfg: StudyConfig,
                     paired: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    st = cfg.stats
    name = f"{st.primary_arm}_vs_{st.baseline}"
    primary: dict[str, Any] = {"comparison": name, "correction": "holm",
                               "tost_margin": st.tost_margin, "endpoints": []}
    mdes: dict[str, Any] = {}
    block = paired.get(name)
    for bucket, k in st.parsed_endpoints():
        label = f"{bucket}:{k}"
        table = (block["overall"] if bucket == ALL else block["by_level"].get(bucket, {})) \
            if block else {}
        cell = table.get(f"pass@{k}")
        if cell is None:
            primary["endpoints"].append({"endpoint": label, "diff": None})
            continue
        diffs = cell["per_seed_diff"]
        primary["endpoints"].append({
            "endpoint": label, **{key: cell.get(key) for key in
                                  ("diff", "ci95", "ci95_seed_t", "p_value", "p_holm")},
            "tost": tost(diffs, st.tost_margin)})
        sd = float(np.std(diffs, ddof=1)) if len(diffs) > 1 else float("nan")
        mdes[label] = {"pairs": len(diffs), "sd_diff": _finite(sd),
                       "mde": cell.get("mde") or mde(sd, len(diffs), st.power),
                       "power": st.power, "target_diff": st.target_diff,
                       "seeds_needed": seeds_needed(sd, st.target_diff, st.power)}
    return primary, mdes


def build_summary(cfg: StudyConfig) -> dict[str, Any]:
    """Everything in the module docstring, from the finished runs in ``cfg.out``."""
    base = cfg.base_train()
    steps = int(base.get("run", {}).get("steps", 100))
    finished = _finished(cfg, steps)
    values = {arm: {s: seed_values(d, steps, DEFAULT_KS) for s, d in runs.items()}
              for arm, runs in finished.items()}
    conf = cfg.stats.confidence
    methods = {}
    for arm, runs in finished.items():
        methods[arm] = {
            "estimator": cfg.arms[arm].estimator,
            "alpha": resolve_alpha(cfg.arms[arm], base)
            if cfg.arms[arm].estimator.startswith("lens") else None,  # GRPO, NSR: no α
            "seeds": sorted(runs), **method_block(values[arm], conf),
            "adv_share_negative": _stat(_metric(runs, "lens/adv_share_negative"), conf),
            "frac_negative": _stat(_metric(runs, "groups/frac_negative"), conf),
        }
    paired = {}
    for arm, other in _pairs(cfg):
        if arm in finished and other in finished:
            paired[f"{arm}_vs_{other}"] = _compare_cells(cfg, finished[arm], finished[other],
                                                         steps, values[arm], values[other])
    st = cfg.stats
    _adjust(paired, f"{st.primary_arm}_vs_{st.baseline}", st.parsed_endpoints())
    primary, mdes = _primary_and_mde(cfg, paired)
    return {
        "setting": _setting(cfg, base, steps, finished, paired),
        "complete": all(len(finished.get(a, {})) == s.seeds for a, s in cfg.arms.items()),
        "primary": primary, "methods": methods, "paired": paired,
        "alpha_sweep": _alpha_sweep(cfg, methods, paired), "mde": mdes,
        "cost": _cost(cfg, finished),
    }


def _metric(runs: dict[int, Path], key: str) -> list[float]:
    return [v for d in runs.values() if (v := metric_mean(d, key)) is not None]


def _pairs(cfg: StudyConfig) -> list[tuple[str, str]]:
    base = cfg.stats.baseline
    out = [(arm, base) for arm in cfg.arms if arm != base]
    out += [(a, b) for a, b in cfg.stats.comparisons if (a, b) not in out]
    return out


def _alpha_sweep(cfg: StudyConfig, methods: dict[str, Any],
                 paired: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for arm in cfg.stats.alpha_sweep:
        if arm not in methods:
            continue
        m = methods[arm]
        vs = paired.get(f"{arm}_vs_{cfg.stats.baseline}", {})
        out[f"{m['alpha']:g}"] = {"arm": arm, "alpha": m["alpha"], "seeds": m["seeds"],
                                  "adv_share_negative": m["adv_share_negative"],
                                  "overall": m["overall"], "vs_baseline": vs.get("overall", {})}
    return out


def _cost(cfg: StudyConfig, finished: dict[str, dict[int, Path]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for arm, runs in finished.items():
        infos = [json.loads(p.read_text()) for d in runs.values()
                 if (p := d / "study.json").is_file()]
        train = sum(float(i.get("train_s", 0)) for i in infos)
        ev = sum(float(i.get("eval_s", 0)) for i in infos)
        out[arm] = {"runs": len(runs), "train_s": train, "eval_s": ev, "total_s": train + ev}
    warm = cfg.warmup_dir / "sft.json"
    out["warmup_s"] = json.loads(warm.read_text()).get("seconds") if warm.is_file() else None
    return out


def _setting(cfg: StudyConfig, base: dict[str, Any], steps: int,
             finished: dict[str, dict[int, Path]], paired: dict[str, Any]) -> dict[str, Any]:
    from dataclasses import asdict

    g = int(base.get("rollout", {}).get("samples_per_prompt", 16))
    prompts = int(base.get("batch", {}).get("prompts_per_step", 128))
    start = [v for runs in finished.values() for d in runs.values()
             if (v := metric_mean(d, "groups/frac_negative", first_only=True)) is not None]
    warm = cfg.warmup_dir / "sft.json"
    return {
        "task": "built-in leveled addition (docs/builtin_task.md)", "preset": cfg.preset,
        "train": base, "warmup": {**asdict(cfg.warmup), **({"final_loss": json.loads(
            warm.read_text()).get("final_loss")} if warm.is_file() else {})},
        "G": g, "prompts_per_step": prompts, "rl_steps": steps,
        "samples_per_run": steps * prompts * g, "eval": asdict(cfg.eval),
        "baseline": cfg.stats.baseline, "endpoints": cfg.stats.endpoints,
        "frac_negative_at_step_1": _stat(start, cfg.stats.confidence) if start else None,
        "runs_done": sum(len(r) for r in finished.values()),
        "runs_planned": sum(a.seeds for a in cfg.arms.values()),
        "compare_test": next(iter(paired.values()))["test"] if paired else None,
    }


def _clean(x: Any) -> Any:
    """NaN/inf → null, numpy scalars → floats, so the file is strict JSON."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def write_summary(cfg: StudyConfig, summary: dict[str, Any]) -> Path:
    from lensrl.runs import atomic_write_text

    out = Path(cfg.results)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "summary.json"
    atomic_write_text(path, json.dumps(_clean(summary), indent=1, allow_nan=False) + "\n")
    return path


def write_report(cfg: StudyConfig) -> Path | None:
    """``lensrl report`` over the finished runs of the first arm of each estimator (the report
    groups runs by estimator, so the α arms would be pooled with ``lens``)."""
    from lensrl.report import build_report

    finished = _finished(cfg, cfg.rl_steps)
    first: dict[str, str] = {}
    for arm, spec in cfg.arms.items():
        first.setdefault(spec.estimator, arm)
    dirs = [d for arm in first.values() for d in finished.get(arm, {}).values()]
    if not dirs:
        return None
    return build_report(dirs, Path(cfg.results) / "report")
