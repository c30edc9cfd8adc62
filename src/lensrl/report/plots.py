"""The report's PNG figures (matplotlib, Agg, no pyplot state).

Each function takes plain data read from run folders, writes one PNG and returns its path, or
None when there is nothing to draw.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lensrl.eval.passk import ALL, HARD, bucket_label
from lensrl.runs import RunInfo, series

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

TRAINING_PANELS: tuple[tuple[str, str], ...] = (
    ("reward/mean", "mean reward"),
    ("groups/frac_negative", "negative-group fraction"),
    ("eval/pass@1", "eval pass@1"),
    (f"eval/pass@1/{HARD}", f"eval pass@1, {HARD}"),
)
LENS_PANELS: tuple[tuple[str, str], ...] = (
    ("lens/D_mean", "D(q), mean"),
    ("lens/conf_wrong_mean", "confidence π̄ of wrong answers"),
    ("lens/conf_right_mean", "confidence π̄ of right answers"),
    ("lens/calibrated_reward_wrong_mean", "calibrated reward of wrong answers"),
    ("lens/adv_share_negative", "share of |A| from negative groups"),
    ("groups/frac_mixed", "mixed-group fraction"),
)
LINESTYLES = ("-", "--", ":", "-.")


def _figure(panels: int, ncols: int, height: float = 3.0) -> tuple[Figure, list[Axes]]:
    from matplotlib.figure import Figure

    ncols = min(ncols, panels)
    nrows = math.ceil(panels / ncols)
    fig = Figure(figsize=(4.2 * ncols, height * nrows))
    # Fixed margins: constrained layout would double the drawing time of the whole report.
    top = 1 - 0.35 / (height * nrows)
    bottom = 0.5 / (height * nrows)
    fig.subplots_adjust(left=0.07, right=0.98, top=top, bottom=bottom, wspace=0.25, hspace=0.6)
    axes = [fig.add_subplot(nrows, ncols, i + 1) for i in range(panels)]
    return fig, axes


def method_colors(methods: Sequence[str]) -> dict[str, str]:
    """A stable color per method (sorted names, tab10)."""
    palette = [f"C{i}" for i in range(10)]
    return {m: palette[i % 10] for i, m in enumerate(sorted(set(methods)))}


def _smooth(values: list[float]) -> np.ndarray:
    """Trailing moving average over ~5% of the points (raw noise is drawn faintly beside it)."""
    v = np.asarray(values, dtype=float)
    w = max(1, len(v) // 20)
    if w == 1:
        return v
    c = np.cumsum(np.insert(v, 0, 0.0))
    out = np.empty_like(v)
    for i in range(len(v)):
        lo = max(0, i - w + 1)
        out[i] = (c[i + 1] - c[lo]) / (i + 1 - lo)
    return out


def _curves(
    runs: Sequence[RunInfo],
    metrics: dict[str, list[dict[str, Any]]],
    panels: Sequence[tuple[str, str]],
    path: Path,
    extra: dict[str, dict[str, tuple[list[float], list[float]]]] | None = None,
) -> Path | None:
    """One panel per key that some run has; one line per run, colored by method."""
    extra = extra or {}

    def data(run: RunInfo, key: str) -> tuple[list[float], list[float]]:
        steps, values = series(metrics.get(run.name, []), key)
        return (steps, values) if steps else extra.get(key, {}).get(run.name, ([], []))

    present = [(k, t) for k, t in panels if any(data(r, k)[0] for r in runs)]
    if not present:
        path.unlink(missing_ok=True)  # a stale figure from an earlier report would mislead
        return None
    colors = method_colors([r.method for r in runs])
    # Line style tells a method's seeds apart: the i-th run of each method gets style i.
    style_of = {
        r.name: LINESTYLES[[o.name for o in runs if o.method == r.method].index(r.name) % 4]
        for r in runs
    }
    fig, axes = _figure(len(present), ncols=2)
    for ax, (key, title) in zip(axes, present):
        for run in runs:
            steps, values = data(run, key)
            if not steps:
                continue
            style = style_of[run.name]
            label = f"{run.method} (seed {run.seed})"
            if key.startswith("eval/"):
                ax.plot(
                    steps, values, style, marker="o", ms=3, color=colors[run.method], label=label
                )
            else:
                ax.plot(steps, values, "-", lw=0.6, alpha=0.3, color=colors[run.method])
                ax.plot(
                    steps, _smooth(values), style, lw=1.5, color=colors[run.method], label=label
                )
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        _readable_ylim(ax)
        if key in PERCENT_KEYS:
            _percent_axis(ax)
        ax.grid(alpha=0.3)
    _legend(axes)
    fig.savefig(path, dpi=110)
    return path


# Fractions drawn as percentages, as every table shows them.
PERCENT_KEYS = frozenset({"reward/mean", "eval/pass@1", f"eval/pass@1/{HARD}"})


def _percent_axis(ax: Axes) -> None:
    from matplotlib.ticker import PercentFormatter

    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))


def _readable_ylim(ax: Axes) -> None:
    """Keep a flat series flat: without this, float noise of 1e-13 fills the whole panel."""
    lo, hi = ax.get_ylim()
    mid = (lo + hi) / 2
    if hi - lo < 1e-6 * max(1.0, abs(mid)):
        pad = max(0.05 * abs(mid), 1e-3)
        ax.set_ylim(mid - pad, mid + pad)
    ax.ticklabel_format(axis="y", useOffset=False)


def _legend(axes: Sequence[Axes]) -> None:
    """One legend, on the first panel, with every run drawn in any panel."""
    seen: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    axes[0].legend(list(seen.values()), list(seen), fontsize=7)


def plot_training_curves(
    runs: Sequence[RunInfo],
    metrics: dict[str, list[dict[str, Any]]],
    path: Path,
    eval_points: dict[str, dict[str, tuple[list[float], list[float]]]] | None = None,
) -> Path | None:
    """Reward, negative-group fraction and eval pass@1 (overall, levels 4–5) against step.

    ``eval_points`` (``{key: {run name: (steps, values)}}``) fills the eval panels for runs whose
    metrics.jsonl has no eval rows, from their ``eval/<step>.json`` files.
    """
    return _curves(runs, metrics, TRAINING_PANELS, path, eval_points)


def plot_lens_diagnostics(
    runs: Sequence[RunInfo], metrics: dict[str, list[dict[str, Any]]], path: Path
) -> Path | None:
    """The LENS internals over time (docs/metrics.md explains healthy ranges)."""
    return _curves(runs, metrics, LENS_PANELS, path)


def bucket_order(buckets: Sequence[str]) -> list[str]:
    """``all``, ``levels_4-5``, then ``level_N`` by N."""
    head = [b for b in (ALL, HARD) if b in buckets]
    levels = sorted((b for b in buckets if b.startswith("level_")), key=lambda b: int(b[6:]))
    return head + levels


def _plot_method(
    ax: Axes, cells: dict[str, dict[str, Any]], shift: float, method: str, color: str
) -> int:
    """One method's pass@k line in one bucket, with its CI bars and seed points (x times
    ``shift``); the bucket's number of problems."""
    ks = sorted(int(k) for k in cells)
    mean = np.array([cells[str(k)]["mean"] for k in ks])
    lo = np.array([cells[str(k)]["ci"][0] for k in ks])
    hi = np.array([cells[str(k)]["ci"][1] for k in ks])
    x = np.array(ks, dtype=float) * shift
    ax.errorbar(
        x, mean, yerr=[mean - lo, hi - mean], marker="o", ms=3, capsize=2, color=color,
        label=method,
    )
    # Each seed's own score, so a reader sees the spread the CI summarises.
    for j, k in enumerate(ks):
        points = cells[str(k)].get("per_seed") or []
        if len(points) > 1:
            ax.scatter(
                np.full(len(points), x[j]), points, s=7, alpha=0.6, color=color,
                edgecolors="none", zorder=3,
            )
    return int(cells[str(ks[0])]["problems"])


def plot_pass_at_k(
    summaries: dict[str, dict[str, dict[str, dict[str, Any]]]], path: Path
) -> Path | None:
    """pass@k against k (log₂ axis) per bucket, one line per method, 95% CI bars, seed points.

    ``summaries``: ``{method: {bucket: {str(k): {mean, ci, problems, per_seed}}}}`` as from
    :func:`lensrl.eval.method_summary`; methods with 2+ seeds also get one small point per seed.
    """
    buckets = bucket_order(sorted({b for s in summaries.values() for b in s}))
    if not buckets:
        path.unlink(missing_ok=True)
        return None
    colors = method_colors(list(summaries))
    fig, axes = _figure(len(buckets), ncols=4, height=2.8)
    for ax, bucket in zip(axes, buckets):
        counts: set[int] = set()
        for i, (method, summary) in enumerate(sorted(summaries.items())):
            cells = summary.get(bucket)
            if cells:
                # Nudge methods apart on the x axis so their CI bars do not hide each other.
                shift = 1.04 ** (i - (len(summaries) - 1) / 2)
                counts.add(_plot_method(ax, cells, shift, method, colors[method]))
        n = "/".join(str(c) for c in sorted(counts))
        ks_all = sorted({int(k) for s in summaries.values() for k in s.get(bucket, {})})
        ax.set_xscale("log", base=2)
        ax.set_xticks(ks_all, [str(k) for k in ks_all])
        ax.set_title(f"{bucket_label(bucket)} (n={n})", fontsize=10)
        ax.set_xlabel("k")
        ax.set_ylabel("pass@k")
        _percent_axis(ax)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.savefig(path, dpi=110)
    return path
