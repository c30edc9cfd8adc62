"""``results/study/summary.json``: the study's numbers, from its committed records alone.

Input: ``<results>/runs.json.gz`` (:mod:`lensrl.study.records`), one record per finished run with
its per-seed score on every bucket and k; nothing is read from run folders, so ``lensrl study
--summary-only`` rebuilds this file from committed data. Every statistic is
:mod:`lensrl.compare.stats`'s, through the same functions ``lensrl compare`` and ``lensrl plan``
call (:func:`lensrl.compare.cells.paired_test`, :func:`~lensrl.compare.cells.test_keys`,
:func:`~lensrl.compare.cells.adjust_family`, :func:`lensrl.compare.stats.seeds_needed`): this
module has no statistics of its own.

Shape (pass@k as fractions; ``ci95`` is ``[lo, hi]`` or null where there is a single seed)::

    {"setting": {..., "families": {...}, "provenance": {...}, "configs": {arm: config}},
     "complete": bool,
     "primary": {"comparison", "correction": "holm", "alpha", "tost_margin",
                 "endpoints": [{"endpoint", "diff", "ci95", "ci95_seed_t", "p_value", "p_holm",
                                "significant", "direction", "tost", "power_at_target_holm"}]},
     "methods": {arm: {"estimator", "alpha", "seeds", "overall": {"pass@k": {"mean", "ci95",
                       "sd_seeds"}}, "by_level": {bucket: {...}}, "adv_share_negative",
                       "frac_negative"}},
     "paired": {"<arm>_vs_<baseline>": {"pairs", "overall": {"pass@k": cell},
                                        "by_level": {bucket: {"pass@k": cell}}}},
     "step0": {"seeds", "overall", "by_level"} | null,       # the warm-up itself, as "methods"
     "from_step0": {arm: {"pairs", "overall", "by_level"}},   # arm − step0, paired by seed
     "alpha_sweep": {"<α>": {"arm", "alpha", "seeds", "adv_share_negative", "overall",
                             "vs_baseline"}},
     "mde": {"all:8": {"pairs", "sd_diff", "mde", "power", "target_diff", "seeds_needed",
                       "power_at_target", "power_at_target_holm"}, ...},
     "cost": {arm: {"runs", "train_s", "eval_s", "total_s"}, "warmup_s": ...}}

A paired ``cell`` holds ``lensrl compare``'s seed-level keys (``p``, ``ci``, ``direction``,
``p_min``, ``se``, ``df``, ``effect_size``, ``mde``, ``tost``...) computed from the per-seed
values alone, plus ``diff``, ``ci95`` (= ``ci``) and ``p_value`` (= ``p``), ``per_seed`` and
``per_seed_diff``, and, only where both arms' records carry per-problem counts, the
problem-level extras of ``lensrl compare`` (``ci_problems``, ``var_split``, ``var_split_diff``;
null otherwise). Each paired cell is in one family: ``role`` ``primary`` (the declared endpoints
of the primary comparison: Holm, ``p_holm``), ``secondary`` (the declared endpoints of every
other comparison: BH inside that family, ``q_bh``) or ``exploratory`` (every other cell: BH);
``significant`` is the adjusted p < α. ``from_step0`` cells are descriptive (no family).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lensrl.compare import stats as ss
from lensrl.compare.cells import Settings, adjust_family, paired_test, test_keys
from lensrl.eval.passk import ALL, DEFAULT_KS
from lensrl.study.config import StudyConfig, resolve_alpha
from lensrl.study.records import STEP0, RunRecord, StudyData, load_study_data

Cell = dict[str, Any]
Arm = dict[int, RunRecord]  # seed -> record


def settings_of(cfg: StudyConfig) -> Settings:
    """The study's :class:`~lensrl.compare.cells.Settings`: its α, power, confidence, TOST margin
    and resampling, as declared in ``stats``."""
    st = cfg.stats
    return Settings(resamples=st.resamples, permutations=st.permutations,
                    confidence=st.confidence, alpha=st.alpha, power=st.power,
                    margin=st.tost_margin, seed=0)


def _stat(values: Sequence[float], confidence: float) -> dict[str, Any]:
    """Mean, t interval over seeds (clipped to [0, 1]: every quantity here is a fraction), sd."""
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return {"mean": None, "ci95": None, "sd_seeds": None}
    ci = None
    if len(v) > 1:
        mean, se, df = ss.paired_se(v)
        lo, hi = ss.t_interval(mean, se, df, confidence)
        ci = [max(float(lo), 0.0), min(float(hi), 1.0)]
    return {"mean": float(v.mean()), "ci95": ci,
            "sd_seeds": float(v.std(ddof=1)) if len(v) > 1 else None}


def _cells(table: dict[str, Any]) -> list[tuple[str, int, Cell]]:
    """``(bucket, k, cell)`` of a ``{"overall", "by_level"}`` block."""
    return [(bucket, int(key.removeprefix("pass@")), cell)
            for bucket, t in [(ALL, table["overall"]), *table["by_level"].items()]
            for key, cell in t.items()]


def _place(block: dict[str, Any], bucket: str, k: int, cell: Any) -> None:
    target = block["overall"] if bucket == ALL else block["by_level"].setdefault(bucket, {})
    target[f"pass@{k}"] = cell


def method_block(arm: Arm, confidence: float) -> dict[str, Any]:
    """``overall`` and ``by_level`` of one arm: each cell's mean, seed-level CI and sd."""
    seeds = sorted(arm)
    block: dict[str, Any] = {"overall": {}, "by_level": {}}
    for bucket, by_k in arm[seeds[0]].values.items() if seeds else []:
        for k in by_k:
            _place(block, bucket, k, _stat([arm[s].values[bucket][k] for s in seeds], confidence))
    return block


def paired_block(a: Arm, b: Arm, names: tuple[str, str], t: Settings) -> dict[str, Any]:
    """Arm ``a`` against arm ``b`` on the seeds both have, every (bucket, k) both scored: the
    seed-level test of the per-seed differences, and the problem-level extras when every
    record of both has its per-problem counts."""
    pairs = sorted(set(a) & set(b))
    block: dict[str, Any] = {"pairs": len(pairs), "overall": {}, "by_level": {}}
    if not pairs:
        return block
    extras = _problem_extras(a, b, pairs, names, t)
    first_a, first_b = a[pairs[0]].values, b[pairs[0]].values
    for bucket, by_k in first_a.items():
        for k in sorted(k for k in by_k if k in first_b.get(bucket, {})):
            ya = np.array([a[s].values[bucket][k] for s in pairs])
            yb = np.array([b[s].values[bucket][k] for s in pairs])
            test = paired_test(ya - yb, t, ss.rng_for(t.seed, *names, bucket, k))
            keys = test_keys(test, t, seeds=True)
            cell: Cell = {
                "method_mean": float(ya.mean()), "baseline_mean": float(yb.mean()),
                "diff": float(ya.mean() - yb.mean()), "ci95": keys["ci"],
                "ci95_seed_t": keys["ci"], "p_value": keys["p"], **keys,
                "mde_seed_t": keys["mde"],
                "per_seed": {"method": [{"seed": s, "value": float(v)} for s, v in zip(pairs, ya)],
                             "baseline": [{"seed": s, "value": float(v)}
                                          for s, v in zip(pairs, yb)]},
                "per_seed_diff": [float(v) for v in ya - yb],
                "ci_problems": None, "var_split": None, "var_split_diff": None,
                "role": None, "p_holm": None, "q_bh": None, "significant": None,
                **extras.get((bucket, k), {}),
            }
            _place(block, bucket, k, cell)
    return block


def _problem_extras(a: Arm, b: Arm, pairs: list[int], names: tuple[str, str],
                    t: Settings) -> dict[tuple[str, int], dict[str, Any]]:
    """``lensrl compare``'s problem-level keys of every (bucket, k), from the records'
    per-problem counts (empty when a record lacks them, e.g. the first study's)."""
    from lensrl.compare.arms import MethodEvals
    from lensrl.compare.cells import compare
    from lensrl.runs import RunInfo

    def arm_evals(name: str, arm: Arm) -> MethodEvals | None:
        counts = [arm[s].problems for s in pairs]
        if any(pc is None for pc in counts):
            return None
        pcs = [pc for pc in counts if pc is not None]
        pos = [{pid: j for j, pid in enumerate(pc.ids)} for pc in pcs]
        common = [i for i in pcs[0].ids if all(i in p for p in pos)]
        level = dict(zip(pcs[0].ids, pcs[0].levels))
        return MethodEvals(
            method=name,
            runs=tuple(RunInfo(Path(f"{name}/seed{s}"), f"{name}-seed{s}", name, s,
                               arm[s].config or {}) for s in pairs),
            steps=tuple(arm[s].step for s in pairs), ids=tuple(common),
            levels=tuple(level[i] for i in common),
            n=np.array([[pc.n[p[i]] for i in common] for pc, p in zip(pcs, pos)]),
            c=np.array([[pc.c[p[i]] for i in common] for pc, p in zip(pcs, pos)]),
        )

    ea, eb = arm_evals(names[0], a), arm_evals(names[1], b)
    if ea is None or eb is None:
        return {}
    result = compare(ea, eb, settings=t, ks=DEFAULT_KS)
    keep = ("ci_problems", "var_split", "var_split_diff")
    return {(r["bucket"], r["k"]): {key: r.get(key) for key in keep} for r in result["rows"]}


def comparisons(cfg: StudyConfig) -> list[tuple[str, str]]:
    """Every declared comparison ``(arm, baseline)``: each arm against the baseline, then
    ``stats.comparisons``."""
    base = cfg.stats.baseline
    out = [(arm, base) for arm in cfg.arms if arm != base]
    out += [(a, b) for a, b in cfg.stats.comparisons if (a, b) not in out]
    return out


def adjust(cfg: StudyConfig, paired: dict[str, Any], alpha: float) -> dict[str, Any]:
    """Sort every paired cell into its family and adjust within it, in place; returns the
    families' description. Primary: the declared endpoints of the primary comparison (Holm).
    Secondary: the declared endpoints of every other declared comparison (BH). Exploratory:
    every other cell (BH)."""
    st = cfg.stats
    primary_name = f"{st.primary_arm}_vs_{st.baseline}"
    endpoints = set(st.parsed_endpoints())
    families: dict[str, list[Cell]] = {"primary": [], "secondary": [], "exploratory": []}
    labels: dict[str, list[str]] = {"primary": [], "secondary": []}
    for name, block in paired.items():
        for bucket, k, cell in _cells(block):
            role = ("exploratory" if (bucket, k) not in endpoints
                    else "primary" if name == primary_name else "secondary")
            families[role].append(cell)
            if role in labels:
                labels[role].append(f"{name} {bucket}:{k}")
    adjust_family(families["primary"], role="primary", method="holm", alpha=alpha)
    adjust_family(families["secondary"], role="secondary", method="bh", alpha=alpha)
    adjust_family(families["exploratory"], role="exploratory", method="bh", alpha=alpha)
    return {
        "alpha": alpha,
        "primary": {"correction": "holm", "size": len(families["primary"]),
                    "cells": labels["primary"]},
        "secondary": {"correction": "bh", "size": len(families["secondary"]),
                      "cells": labels["secondary"]},
        "exploratory": {"correction": "bh", "size": len(families["exploratory"])},
    }


def _get(block: dict[str, Any] | None, bucket: str, k: int) -> Cell | None:
    if not block:
        return None
    table = block["overall"] if bucket == ALL else block["by_level"].get(bucket, {})
    cell: Cell | None = table.get(f"pass@{k}")
    return cell


def primary_and_mde(cfg: StudyConfig, paired: dict[str, Any],
                    t: Settings) -> tuple[dict[str, Any], dict[str, Any]]:
    """The primary endpoints as declared, and each one's MDE, seeds needed for
    ``stats.target_diff`` (with the exact sign-flip floor) and the power achieved at that target,
    at α and at α/m (the level Holm's first step applies to the smallest of m primary p)."""
    st = cfg.stats
    name = f"{st.primary_arm}_vs_{st.baseline}"
    primary: dict[str, Any] = {"comparison": name, "correction": "holm", "alpha": t.alpha,
                               "tost_margin": st.tost_margin, "endpoints": []}
    mdes: dict[str, Any] = {}
    endpoints = st.parsed_endpoints()
    for bucket, k in endpoints:
        label = f"{bucket}:{k}"
        cell = _get(paired.get(name), bucket, k)
        if cell is None:
            primary["endpoints"].append({"endpoint": label, "diff": None})
            continue
        holm_alpha = t.alpha / len(endpoints)
        power_holm = (ss.t_power(st.target_diff, cell["se"], cell["df"], alpha=holm_alpha)
                      if cell["p_min"] <= holm_alpha and cell["df"] >= 1 else None)
        primary["endpoints"].append({
            "endpoint": label,
            **{key: cell.get(key) for key in ("diff", "ci95", "ci95_seed_t", "p_value", "p_holm",
                                              "significant", "direction", "tost")},
            "power_at_target_holm": power_holm})
        d = cell["per_seed_diff"]
        sd = float(np.std(d, ddof=1)) if len(d) > 1 else math.nan
        mdes[label] = {
            "pairs": len(d), "sd_diff": sd, "mde": cell["mde"], "power": st.power,
            "target_diff": st.target_diff,
            "seeds_needed": ss.seeds_needed(sd, st.target_diff, paired=True, alpha=t.alpha,
                                            power=st.power) if sd > 0 else None,
            "power_at_target": (ss.t_power(st.target_diff, cell["se"], cell["df"], alpha=t.alpha)
                                if cell["p_min"] <= t.alpha and cell["df"] >= 1 else None),
            "power_at_target_holm": power_holm, "holm_alpha": holm_alpha}
    return primary, mdes


def _metric(arm: Arm, key: str) -> list[float]:
    return [r.metrics[key] for r in arm.values() if key in r.metrics]


def frac_negative_at_step_1(data: StudyData, confidence: float) -> dict[str, Any] | None:
    """The all-wrong share of groups at the first RL step, with a seed-level CI: every arm of a
    seed starts from the same warm-up with the same seed, so its runs are averaged into one
    value per seed before the t interval (the runs of one seed are not independent)."""
    per_seed: dict[int, list[float]] = {}
    for (arm, seed), r in data.records.items():
        if arm != STEP0 and "frac_negative_step1" in r.metrics:
            per_seed.setdefault(seed, []).append(r.metrics["frac_negative_step1"])
    if not per_seed:
        return None
    out = _stat([float(np.mean(v)) for _, v in sorted(per_seed.items())], confidence)
    return {**out, "seeds": len(per_seed), "runs": sum(len(v) for v in per_seed.values())}


def build_summary(cfg: StudyConfig, data: StudyData | None = None) -> dict[str, Any]:
    """Everything in the module docstring, from the records in ``cfg.results`` (or ``data``)."""
    data = data if data is not None else load_study_data(cfg.results)
    t = settings_of(cfg)
    base = cfg.base_train()
    arms = {name: data.arm(name) for name in cfg.arms if data.arm(name)}
    methods = {}
    for name, arm in arms.items():
        spec = cfg.arms[name]
        methods[name] = {
            "estimator": spec.estimator,
            "alpha": resolve_alpha(spec, base) if spec.estimator.startswith("lens") else None,
            "seeds": sorted(arm), **method_block(arm, t.confidence),
            "adv_share_negative": _stat(_metric(arm, "adv_share_negative"), t.confidence),
            "frac_negative": _stat(_metric(arm, "frac_negative"), t.confidence),
        }
    paired = {f"{a}_vs_{b}": paired_block(arms[a], arms[b], (a, b), t)
              for a, b in comparisons(cfg) if a in arms and b in arms}
    families = adjust(cfg, paired, t.alpha)
    step0 = data.arm(STEP0)
    from_step0 = {name: paired_block(arm, step0, (name, STEP0), t)
                  for name, arm in arms.items()} if step0 else {}
    step0_block = ({"seeds": sorted(step0), **method_block(step0, t.confidence)}
                   if step0 else None)
    primary, mdes = primary_and_mde(cfg, paired, t)
    return {
        "setting": _setting(cfg, base, data, arms, families, t),
        "complete": all(len(arms.get(a, {})) >= s.seeds for a, s in cfg.arms.items()),
        "primary": primary, "methods": methods, "paired": paired, "step0": step0_block,
        "from_step0": from_step0,
        "alpha_sweep": _alpha_sweep(cfg, methods, paired), "mde": mdes,
        "cost": _cost(cfg, arms),
    }


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


def _cost(cfg: StudyConfig, arms: dict[str, Arm]) -> dict[str, Any]:
    """Seconds per arm, from the records (None where a record has none: the first study's)."""
    out: dict[str, Any] = {}
    for name, arm in arms.items():
        train = [r.train_s for r in arm.values() if r.train_s is not None]
        ev = [r.eval_s for r in arm.values() if r.eval_s is not None]
        out[name] = {"runs": len(arm), "timed": len(train),
                     "train_s": sum(train) if train else None, "eval_s": sum(ev) if ev else None,
                     "total_s": sum(train) + sum(ev) if train else None}
    warm = cfg.warmup_dir / "sft.json"
    out["warmup_s"] = json.loads(warm.read_text()).get("seconds") if warm.is_file() else None
    return out


def _provenance(data: StudyData) -> dict[str, Any]:
    """Which code and machines produced the records: every distinct commit (and whether its
    tree was dirty), versions and machine, with how many records each accounts for."""
    seen: dict[str, dict[str, Any]] = {}
    for r in data.records.values():
        p = {k: r.provenance.get(k) for k in ("source", "commit", "dirty", "lensrl", "torch",
                                              "transformers", "python")}
        # the machine without its load at the time, which differs from run to run
        p["machine"] = {k: v for k, v in (r.provenance.get("machine") or {}).items()
                        if k != "load_avg_1m"} or None
        key = json.dumps(p, sort_keys=True)
        seen.setdefault(key, {**p, "records": 0})["records"] += 1
    return {"records_file": str(data.path), "records": len(data.records),
            "produced_by": list(seen.values())}


def _setting(cfg: StudyConfig, base: dict[str, Any], data: StudyData, arms: dict[str, Arm],
             families: dict[str, Any], t: Settings) -> dict[str, Any]:
    from dataclasses import asdict

    from lensrl.compare.cells import test_description

    g = int(base.get("rollout", {}).get("samples_per_prompt", 16))
    prompts = int(base.get("batch", {}).get("prompts_per_step", 128))
    warm = cfg.warmup_dir / "sft.json"
    steps = cfg.rl_steps
    return {
        "task": "built-in leveled addition (docs/builtin_task.md)", "preset": cfg.preset,
        "train": base, "warmup": {**asdict(cfg.warmup), **({"final_loss": json.loads(
            warm.read_text()).get("final_loss")} if warm.is_file() else {})},
        "G": g, "prompts_per_step": prompts, "rl_steps": steps,
        "samples_per_run": steps * prompts * g, "eval": asdict(cfg.eval),
        "baseline": cfg.stats.baseline, "endpoints": cfg.stats.endpoints,
        "alpha": t.alpha, "families": families,
        "frac_negative_at_step_1": frac_negative_at_step_1(data, t.confidence),
        "runs_done": sum(len(a) for a in arms.values()),
        "runs_planned": sum(a.seeds for a in cfg.arms.values()),
        "step0_seeds": sorted(data.arm(STEP0)),
        "compare_test": test_description(t),
        "provenance": _provenance(data),
        "configs": {name: next(r.config for r in arm.values()) for name, arm in arms.items()
                    if any(r.config for r in arm.values())},
    }


def seed_plan(cfg: StudyConfig) -> list[str]:
    """For each primary endpoint, from the paired seeds recorded so far (the pilot first): the sd
    of the paired differences and the seeds needed for ``stats.target_diff`` at ``stats.power``
    (:func:`lensrl.compare.stats.seeds_needed`, the planner of ``lensrl plan``)."""
    st = cfg.stats
    data = load_study_data(cfg.results)
    a, b = data.arm(st.primary_arm), data.arm(st.baseline)
    pairs = sorted(set(a) & set(b))
    if len(pairs) < 2:
        return [f"seed plan: needs 2 paired seeds of {st.primary_arm} and {st.baseline} "
                f"(have {len(pairs)})"]
    lines = []
    for bucket, k in st.parsed_endpoints():
        diffs = [a[s].values[bucket][k] - b[s].values[bucket][k] for s in pairs]
        sd = float(np.std(diffs, ddof=1))
        need = ss.seeds_needed(sd, st.target_diff, paired=True, alpha=st.alpha,
                               power=st.power) if sd > 0 else 2
        lines.append(f"seed plan {bucket}:{k}: sd of paired differences {100 * sd:.2f} pp over "
                     f"{len(pairs)} pairs -> {need or '>1000'} seeds for "
                     f"{100 * st.target_diff:g} pp at {st.power:.0%} power and alpha {st.alpha} "
                     f"(config: {cfg.arms[st.primary_arm].seeds})")
    return lines


def write_summary(cfg: StudyConfig, summary: dict[str, Any]) -> Path:
    """``<results>/summary.json``, atomically, as strict JSON (NaN and inf as null)."""
    from lensrl.runs import atomic_write_text, clean

    path = Path(cfg.results) / "summary.json"
    atomic_write_text(path, json.dumps(clean(summary), indent=1, allow_nan=False) + "\n")
    return path
