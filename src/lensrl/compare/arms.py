"""Arms of a comparison: runs grouped by method (or ``--group-by``), aligned on their problems.

:class:`MethodEvals` holds one arm's per-run ``(n, c)``; :func:`load_methods` reads run folders
into arms; :func:`method_summary` gives an arm's pass@k with a CI that includes seed variance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lensrl.compare import stats as ss
from lensrl.compare.pooling import group_label, pooling_problems
from lensrl.eval.passk import DEFAULT_KS, bucket_masks, pass_at_k_per_problem, usable_ks
from lensrl.runs import RunInfo, read_eval, run_info


@dataclass(frozen=True)
class MethodEvals:
    """The evaluations of one arm's seeds on a common, ordered set of ``m`` problems.

    Fields:
        method: the arm's name (estimator, or ``KEY=value`` under ``--group-by``).
        runs: the ``s`` runs (seed replicates).
        steps: ``(s,)`` the evaluated step of each run.
        ids: ``(m,)`` problem ids.
        levels: ``(m,)`` levels (None where unknown).
        n, c: ``(s, m)`` samples and correct answers.
        samplings: ``(s,)`` each evaluation's ``sampling`` record (empty when unknown).
    """

    method: str
    runs: tuple[RunInfo, ...]
    steps: tuple[int, ...]
    ids: tuple[str, ...]
    levels: tuple[int | None, ...]
    n: np.ndarray
    c: np.ndarray
    samplings: tuple[dict[str, Any], ...] = field(default=())

    def pass_at_k(self, k: int, mask: np.ndarray | None = None) -> np.ndarray:
        """``(s, m')`` per-seed, per-problem pass@k (on ``mask``'s problems)."""
        out = np.stack([pass_at_k_per_problem(n, c, k) for n, c in zip(self.n, self.c)])
        return out if mask is None else out[:, mask]

    def eval_var(self, k: int, mask: np.ndarray) -> np.ndarray:
        """``(s,)`` evaluation-noise variance of each run's score ``Y[r]`` (jackknife, per run)."""
        m = int(mask.sum())
        per = [ss.jackknife_var_pass_at_k(n[mask], c[mask], k) for n, c in zip(self.n, self.c)]
        return np.array([v.sum() / m**2 for v in per])

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
            samplings=self.samplings,
        )


def load_methods(
    run_dirs: Sequence[str | Path], *, step: int | None = None, group_by: str | None = None,
    eval_name: str | None = None,
) -> dict[str, MethodEvals]:
    """Group runs into arms (by estimator, or by ``group_by``) and align each arm's seeds.
    Reads each run's ``eval/<step>.json``, or ``eval/<step>.<eval_name>.json``."""
    grouped: dict[str, list[tuple[RunInfo, dict[str, Any]]]] = {}
    for d in run_dirs:
        info = run_info(d)
        grouped.setdefault(group_label(info, group_by), []).append((info, read_eval(d, step, eval_name)))
    out: dict[str, MethodEvals] = {}
    for method, items in grouped.items():
        tables = [{str(p["id"]): p for p in ev["problems"]} for _, ev in items]
        first = [str(p["id"]) for p in items[0][1]["problems"]]
        common = [pid for pid in first if all(pid in t for t in tables)]
        if not common:
            raise ValueError(f"the runs of {method!r} share no evaluated problem")
        out[method] = MethodEvals(
            method=method,
            runs=tuple(info for info, _ in items),
            steps=tuple(int(ev["step"]) for _, ev in items),
            ids=tuple(common),
            levels=tuple(tables[0][pid].get("level") for pid in common),
            n=np.array([[int(t[pid]["n"]) for pid in common] for t in tables]),
            c=np.array([[int(t[pid]["c"]) for pid in common] for t in tables]),
            samplings=tuple(dict(ev.get("sampling") or {}) for _, ev in items),
        )
    return out


def check_pooling(
    methods: Sequence[MethodEvals], *, group_by: str | None = None, ignore: Sequence[str] = ()
) -> list[str]:
    """:func:`lensrl.compare.pooling.pooling_problems` for loaded arms."""
    arms: dict[str, list[tuple[RunInfo, dict[str, Any]]]] = {}
    for m in methods:
        samplings = m.samplings or tuple({} for _ in m.runs)  # unknown: nothing to compare
        arms[m.method] = [
            (info, {"step": st, "sampling": sa})
            for info, st, sa in zip(m.runs, m.steps, samplings, strict=True)
        ]
    return pooling_problems(arms, group_by=group_by, ignore=ignore)


def method_summary(
    evals: MethodEvals,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, dict[str, Any]]]:
    """pass@k of one arm pooled over its seeds, with a CI that includes seed variance.

    Same shape as an eval JSON's ``pass_at_k`` plus ``per_seed`` (each run's score), ``seeds``
    and ``ci_kind``: ``{bucket: {str(k): {mean, ci, problems, seeds, per_seed, ci_kind}}}``.
    With ``s ≥ 2`` seeds the CI is ``mean ± t · √(v_seeds + v_problems)``, ``v_seeds`` the
    variance of the run scores over ``s`` and ``v_problems`` that of the seed-averaged problem
    values over ``m`` (a crossed design: each term also holds a share of the seed × problem
    residual, so it is slightly conservative), with Welch–Satterthwaite df. With one seed it
    is the bootstrap over problems and says nothing about other seeds.
    """
    out: dict[str, dict[str, dict[str, Any]]] = {}
    ks_ok = usable_ks(ks, evals.n.ravel().tolist())
    s = len(evals.runs)
    for k in ks_ok:
        x_all = evals.pass_at_k(k)
        for bucket, mask in bucket_masks(evals.levels).items():
            x = x_all[:, mask]
            y, m = x.mean(axis=1), x.shape[1]
            if s >= 2:
                v_seed = float(y.var(ddof=1)) / s
                v_prob = float(x.mean(axis=0).var(ddof=1)) / m if m > 1 else 0.0
                denom = v_seed**2 / (s - 1) + (v_prob**2 / (m - 1) if m > 1 else 0.0)
                df = (v_seed + v_prob) ** 2 / denom if denom > 0 else float(s - 1)
                lo, hi = ss.t_interval(float(y.mean()), math.sqrt(v_seed + v_prob), df, confidence)
                ci, kind = [float(lo), float(hi)], "t: seeds and problems"
            else:
                rng = ss.rng_for(seed, evals.method, bucket, k)
                lo, hi = ss.bootstrap_mean_ci(x.mean(axis=0), resamples=resamples,
                                              confidence=confidence, rng=rng)
                ci = [float(lo), float(hi)]
                kind = "bootstrap over problems (one seed)"
            out.setdefault(bucket, {})[str(k)] = {
                "mean": float(x.mean()),
                "ci": ci,
                "problems": int(mask.sum()),
                "seeds": s,
                "per_seed": [float(v) for v in y],
                "ci_kind": kind,
            }
    return out
