"""``lensrl report``: an HTML and a Markdown report with plots, from run folders only.

Reads ``config.json``, ``metrics.jsonl`` and ``eval/<step>.json`` (the run folder is the only
interface, lensrl.runs); never imports the trainer, torch-based code of ours or pyplot. Writes
into ``--out``:
``index.html`` (self-contained), ``report.md`` and the PNGs it references.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lensrl.cli import one_line
from lensrl.compare.arms import MethodEvals, check_pooling, load_methods, method_summary
from lensrl.compare.cells import CLAIMS, Settings, adjust, compare
from lensrl.compare.tables import row_cells
from lensrl.eval.passk import ALL, HARD, bucket_label, parse_endpoints
from lensrl.report.plots import (
    bucket_order,
    plot_lens_diagnostics,
    plot_pass_at_k,
    plot_training_curves,
)
from lensrl.report.render import Block, Heading, Image, Para, Table, to_html, to_markdown
from lensrl.runs import RunInfo, eval_steps, read_eval, read_metrics, run_info

__all__ = ["build_report", "configure_parser", "run"]

TITLE = "LENS / GRPO run report"


def _pct(x: float) -> str:
    return "–" if math.isnan(x) else f"{100 * x:.2f}"


def _pp(x: float) -> str:
    return f"{100 * x:+.2f}"


def _ci(ci: Sequence[float] | None, signed: bool = False) -> str:
    if ci is None:
        return "–"
    f = _pp if signed else _pct
    return f"[{f(ci[0])}, {f(ci[1])}]"


def _eval_points(runs: Sequence[RunInfo]) -> dict[str, dict[str, tuple[list[float], list[float]]]]:
    """``{metric key: {run: (steps, values)}}`` of pass@1 from the eval/<step>.json files."""
    out: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    for run in runs:
        for step in eval_steps(run.path):
            cells = read_eval(run.path, step).get("pass_at_k", {})
            for bucket, key in ((ALL, "eval/pass@1"), (HARD, f"eval/pass@1/{HARD}")):
                if "1" in cells.get(bucket, {}):
                    steps, values = out.setdefault(key, {}).setdefault(run.name, ([], []))
                    steps.append(float(step))
                    values.append(float(cells[bucket]["1"]["mean"]))
    return out


def _runs_table(runs: Sequence[RunInfo], metrics: dict[str, list[dict[str, Any]]]) -> Table:
    rows = []
    for r in runs:
        steps = [row["step"] for row in metrics.get(r.name, []) if "step" in row]
        evals = eval_steps(r.path)
        last = read_eval(r.path, evals[-1]) if evals else None
        rows.append(
            [
                r.name,
                r.method,
                "–" if r.seed is None else str(r.seed),
                str(r.config.get("task", {}).get("dataset", "–")),
                str(max(steps)) if steps else "–",
                ", ".join(map(str, evals)) or "–",
                str(len(last["problems"])) if last else "–",
                f"{last.get('unjudged', 0)} / {last.get('samples_total', 0)}" if last else "–",
            ]
        )
    headers = [
        "run",
        "method",
        "seed",
        "dataset",
        "last step",
        "eval steps",
        "problems",
        "unjudged samples",
    ]
    return Table(headers, rows)


def _summary_table(summary: dict[str, dict[str, dict[str, Any]]]) -> Table:
    ks = sorted({int(k) for cells in summary.values() for k in cells})
    rows = []
    for bucket in bucket_order(list(summary)):
        cells = summary[bucket]
        n = next(iter(cells.values()))["problems"] if cells else 0
        rows.append(
            [bucket_label(bucket), str(n)]
            + [
                f"{_pct(cells[str(k)]['mean'])} {_ci(cells[str(k)]['ci'])}"
                if str(k) in cells
                else "–"
                for k in ks
            ]
        )
    seeds = max((c.get("seeds", 1) for cells in summary.values() for c in cells.values()), default=1)
    label = "95% CI incl. seeds" if seeds >= 2 else "95% CI, problems only"
    return Table(["bucket", "problems", *[f"pass@{k} [{label}]" for k in ks]], rows)


def _comparison_table(cmp: dict[str, Any], rows: Sequence[dict[str, Any]]) -> Table:
    ci_name = "95% CI (seeds)" if cmp["level"] == "seeds" else "95% CI (problems)"
    body = []
    for r in rows:
        c = row_cells(r)
        body.append(
            [
                bucket_label(r["bucket"]),
                str(r["problems"]),
                str(r["k"]),
                _pct(r["method_mean"]),
                _pct(r["baseline_mean"]),
                _pp(r["diff"]),
                _ci(r["ci"], signed=True),
                f"{r['p']:.4f}",
                c["adj"],
                c["effect"],
                c["sd"],
                c["mde"],
                c["tost"],
            ]
        )
    headers = [
        "bucket",
        "problems",
        "k",
        cmp["method"],
        cmp["baseline"],
        "Δ (pp)",
        ci_name,
        "p",
        "adjusted (H: Holm, q: BH)",
        "effect size",
        "seed sd (pp)",
        "MDE (pp)",
        "TOST p",
    ]
    return Table(headers, body)


def _comparisons(
    methods: dict[str, MethodEvals],
    primary: Sequence[tuple[str, int]],
    margin: float | None,
) -> list[dict[str, Any]]:
    """Every other method against GRPO, LENS first, when GRPO has evaluations."""
    if "grpo" not in methods:
        return []
    others = sorted((m for m in methods if m != "grpo"), key=lambda m: (m != "lens", m))
    out = [compare(methods[m], methods["grpo"], settings=Settings(margin=margin)) for m in others]
    adjust(out, primary)
    return out


def _primary_blocks(comparisons: Sequence[dict[str, Any]], warnings: Sequence[str]) -> list[Block]:
    """The report's first section: the declared primary endpoints of every comparison."""
    blocks: list[Block] = [Heading("Primary endpoints: is the method better than GRPO?")]
    for w in warnings:
        blocks.append(Para(f"WARNING: these runs should not be pooled as given: {w}"))
    declared = any(r["role"] == "primary" for c in comparisons for r in c["rows"])
    if not declared:
        blocks.append(
            Para(
                "No primary endpoints were declared (lensrl report --primary all:8,levels_4-5:16): "
                "every cell below is exploratory, with Benjamini-Hochberg q-values."
            )
        )
    for cmp in comparisons:
        blocks.append(Para(f"{cmp['method']} − {cmp['baseline']}: {cmp['claim']}."))
        rows = [r for r in cmp["rows"] if r["role"] == "primary"]
        if rows:
            blocks.append(_comparison_table(cmp, rows))
    return blocks


def build_report(
    run_dirs: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    primary: str | None = None,
    margin: float | None = None,
    preface: Sequence[Block] = (),
) -> Path:
    """Write ``out_dir/index.html``, ``out_dir/report.md`` and PNGs; return the HTML's path.

    ``primary``: declared endpoints (``"all:8,levels_4-5:16"``), shown first with Holm-adjusted
    p; ``margin``: equivalence margin (a fraction) for a TOST on every row; ``preface``: blocks
    shown before everything else (the study's step-0 table). Runs that should not be pooled are
    reported with a warning rather than refused: a report describes what exists.
    """
    endpoints = parse_endpoints(primary)
    runs = _named_by_folder([run_info(d) for d in run_dirs])
    out = Path(out_dir)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        return _write_report(runs, out, endpoints, margin, list(preface))
    except BaseException:
        if created:  # a failed report leaves no empty or half-written folder
            shutil.rmtree(out, ignore_errors=True)
        raise


def _named_by_folder(runs: list[RunInfo]) -> list[RunInfo]:
    """Runs as given, each shown under its run name, or under its folder when two share a
    name (two runs of one preset are both named by the preset)."""
    names = [r.name for r in runs]
    if len(set(names)) == len(names):
        return runs
    folders = [str(r.path) for r in runs]
    if len(set(folders)) != len(folders):
        raise ValueError(f"a run folder is given twice: {sorted(folders)}")
    return [dataclasses.replace(r, name=str(r.path)) if names.count(r.name) > 1 else r
            for r in runs]


def _write_report(runs: list[RunInfo], out: Path, endpoints: list[tuple[str, int]],
                  margin: float | None, preface: list[Block]) -> Path:
    metrics = {r.name: read_metrics(r.path) for r in runs}
    evaluated = [r for r in runs if eval_steps(r.path)]
    methods = load_methods([r.path for r in evaluated]) if evaluated else {}
    comparisons = _comparisons(methods, endpoints, margin)
    warnings = check_pooling(list(methods.values())) if comparisons else []

    blocks: list[Block] = preface + (_primary_blocks(comparisons, warnings) if comparisons else [])
    blocks += _runs_blocks(runs, metrics, out)
    blocks += _pass_at_k_blocks(methods, out)
    if comparisons:
        blocks += _all_cells_blocks(comparisons)
    blocks.append(Heading("LENS diagnostics"))
    fig = plot_lens_diagnostics(runs, metrics, out / "lens_diagnostics.png")
    blocks.append(
        Image(fig, "LENS internals against step (docs/metrics.md)")
        if fig
        else Para("No lens/* metrics found.")
    )
    (out / "report.md").write_text(to_markdown(TITLE, blocks))
    index = out / "index.html"
    index.write_text(to_html(TITLE, blocks))
    return index


def _runs_blocks(
    runs: list[RunInfo], metrics: dict[str, list[dict[str, Any]]], out: Path
) -> list[Block]:
    """The runs table and their training curves (written to ``out``)."""
    blocks: list[Block] = [Heading("Runs"), _runs_table(runs, metrics)]
    blocks.append(
        Para(
            "Runs with the same method (algo.estimator) are seed replicates. pass@k uses the unbiased "
            "estimator from each problem's (n, c) of the latest evaluation; unjudged samples count as "
            "wrong. See docs/evaluation.md."
        )
    )
    blocks.append(Heading("Training curves"))
    fig = plot_training_curves(runs, metrics, out / "training_curves.png", _eval_points(runs))
    blocks.append(
        Image(
            fig,
            "Reward, negative-group fraction and eval pass@1 against step (faint: raw; "
            "bold: moving average)",
        )
        if fig
        else Para("No training metrics found.")
    )
    return blocks


def _pass_at_k_blocks(methods: dict[str, MethodEvals], out: Path) -> list[Block]:
    """The pass@k plot (written to ``out``) and each method's table."""
    summaries = {m: method_summary(ev) for m, ev in methods.items()}
    blocks: list[Block] = [Heading("pass@k by level")]
    fig = plot_pass_at_k(summaries, out / "pass_at_k.png")
    if fig is None:
        blocks.append(Para("No evaluations found: run `lensrl eval` first."))
        return blocks
    blocks.append(
        Image(
            fig,
            "pass@k by difficulty bucket per method: the mean over seeds with its 95% CI "
            "(seeds and problems when a method has 2+ seeds, else problems only), and each "
            "seed's own value as a small point",
        )
    )
    for method, summary in sorted(summaries.items()):
        ev = methods[method]
        blocks.append(Heading(f"{method}: {len(ev.runs)} seed(s), steps {list(ev.steps)}", 3))
        blocks.append(_summary_table(summary))
    return blocks


def _all_cells_blocks(comparisons: Sequence[dict[str, Any]]) -> list[Block]:
    """Every cell of every comparison against GRPO, with how to read them."""
    blocks: list[Block] = [Heading("All cells: comparison against GRPO")]
    for cmp in comparisons:
        blocks.append(
            Heading(
                f"{cmp['method']} − {cmp['baseline']}, {cmp['design']}, on "
                f"{cmp['problems']} paired problems",
                3,
            )
        )
        blocks.append(Para(CLAIMS[cmp["level"]] + "."))
        blocks.append(_comparison_table(cmp, cmp["rows"]))
    blocks.append(
        Para(
            "Δ in percentage points: mean over seeds of the run score (mean pass@k over the "
            "bucket's problems). With 2+ seeds per method: p from the exact sign-flip test over "
            "seed pairs (paired by run.seed; else the whole-run permutation test) and the t "
            "interval of the seed-level differences. With one seed: the per-problem "
            "permutation test and the bootstrap over problems, which say only whether these "
            "checkpoints differ. Adjusted: Holm over primaries (H), Benjamini-Hochberg q over "
            "the rest. MDE: the difference detectable with 80% power (∞: too few seeds for "
            "p < 0.05 at all). A non-significant row is not evidence of no difference without "
            "an equivalence test (TOST p, with --margin). See docs/evaluation.md."
        )
    )
    return blocks


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run folders")
    parser.add_argument("--out", required=True, type=Path, help="report folder to write")
    parser.add_argument(
        "--primary",
        default=None,
        metavar="BUCKET:K,...",
        help="declared primary endpoints, shown first (e.g. all:8,levels_4-5:16)",
    )
    parser.add_argument(
        "--margin", type=float, default=None, metavar="PP", help="equivalence margin (pp)"
    )


def run(args: argparse.Namespace) -> int:
    try:
        if args.margin is not None and not args.margin > 0:
            raise ValueError(f"--margin must be > 0 (percentage points), got {args.margin}")
        margin = None if args.margin is None else args.margin / 100
        index = build_report(args.runs, args.out, primary=args.primary, margin=margin)
    except (FileNotFoundError, ValueError) as err:
        print(f"lensrl report: error: {one_line(err)}", file=sys.stderr)
        return 2
    print(f"wrote {index} and {index.parent / 'report.md'}")
    return 0
