"""The report from fake run folders: files, embedded images, tables; light imports; the CLI."""

from __future__ import annotations

import ast
import importlib.util
import re
from collections.abc import Callable
from pathlib import Path

import pytest

import lensrl.report
from lensrl.cli import main
from lensrl.report import build_report


def test_full_report(runs: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "report"
    index = build_report(runs, out)
    assert index == out / "index.html"
    html = index.read_text()
    images = re.findall(r'<img src="([^"]+)"', html)
    assert len(images) == 3 and all(src.startswith("data:image/png;base64,") for src in images)
    assert "http://" not in html and "https://" not in html  # opens offline
    assert "All cells: comparison against GRPO" in html and "lens − grpo" in html
    # Primary endpoints come first, before the runs table and the plots.
    assert html.index("Primary endpoints") < html.index("<h2>Runs</h2>")
    assert "No primary endpoints were declared" in html
    md = (out / "report.md").read_text()
    pngs = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert pngs == ["training_curves.png", "pass_at_k.png", "lens_diagnostics.png"]
    assert all((out / p).read_bytes().startswith(b"\x89PNG") for p in pngs)
    assert "| levels_4-5 | 16 |" in md  # levels 4–5 of 40 problems with levels 1 + j % 5
    assert "steps [40, 40]" in md  # the latest evaluation of each seed
    assert "95% CI incl. seeds" in md  # two seeds per method: the CI includes their spread
    # Two seeds a method: the seed-level test, which cannot reach p < 0.05 (MDE ∞).
    assert "exact sign-flip" in md and "∞" in md


def test_report_primary_first(runs: list[Path], tmp_path: Path) -> None:
    md = (build_report(runs, tmp_path / "r", primary="all:1", margin=0.05).parent / "report.md")
    text = md.read_text()
    first = text.index("## Primary endpoints")
    table = text.index("| all | 40 | 1 |", first)
    assert table < text.index("## Runs")
    row = text[table : text.index("\n", table)].split(" | ")
    assert row[8] == f"H {row[7]}"  # Holm over a family of one leaves p as it is
    with pytest.raises(ValueError, match="--primary"):
        build_report(runs, tmp_path / "r2", primary="all:99")


def test_pass_at_k_plot_draws_each_seed(runs: list[Path], tmp_path: Path) -> None:
    from matplotlib.figure import Figure

    from lensrl.compare.arms import load_methods, method_summary
    from lensrl.report import plots

    summaries = {m: method_summary(ev) for m, ev in load_methods(runs).items()}
    assert len(summaries["lens"]["all"]["1"]["per_seed"]) == 2
    drawn: list[int] = []
    real = Figure.savefig

    def count(fig: Figure, *a: object, **kw: object) -> None:
        drawn.append(sum(len(ax.collections) for ax in fig.axes))
        real(fig, *a, **kw)

    Figure.savefig = count  # type: ignore[method-assign]
    try:
        plots.plot_pass_at_k(summaries, tmp_path / "p.png")
    finally:
        Figure.savefig = real  # type: ignore[method-assign]
    # One scatter of seed points per (method, bucket, k), beside the error-bar collections.
    ks = len(summaries["lens"]["all"])
    buckets = len(summaries["lens"])
    assert drawn and drawn[0] >= 2 * buckets * ks


def test_report_without_evaluations(make_fake_run: Callable[..., Path], tmp_path: Path) -> None:
    run = make_fake_run("grpo", 0, evals=False)
    out = tmp_path / "report"
    (out).mkdir()
    (out / "pass_at_k.png").write_bytes(b"stale")
    html = build_report([run], out).read_text()
    assert "run `lensrl eval` first" in html
    assert html.count("<img") == 2  # curves (eval pass@1 from metrics) and diagnostics
    assert not (out / "pass_at_k.png").exists()


LIGHT = (
    "lensrl.train.trainer",
    "lensrl.policy",
    "lensrl.rollout",
    "torch",
    "transformers",
    "matplotlib.pyplot",
)


def _top_level_imports(path: Path) -> list[str]:
    """Modules ``path`` imports at its top level (a lazy import inside a function is not one)."""
    names = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
    return names


def test_report_imports_stay_light() -> None:
    """lensrl.report and every lensrl module it imports at its top level, followed through, read
    files: no trainer, model code or pyplot. Followed rather than listed, so that a module moved
    between packages stays checked.

    (``import lensrl`` itself pulls in torch through ``lensrl.core``; that is not ours to fix.)
    """
    todo, seen = ["lensrl.report"], {"lensrl"}
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        spec = importlib.util.find_spec(module)
        assert spec is not None and spec.origin is not None, module
        for name in _top_level_imports(Path(spec.origin)):
            assert not name.startswith(LIGHT), f"{module} imports {name}"
            parts = name.split(".")
            if parts[0] == "lensrl":  # its parent packages run too
                todo += [".".join(parts[:i]) for i in range(2, len(parts) + 1)]
    assert {"lensrl.report.plots", "lensrl.runs"} <= seen  # it did follow the imports


def test_cli_report(runs: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_build(run_dirs: list[str], out: Path, **kw: object) -> Path:
        calls.append((run_dirs, out, kw))
        return out / "index.html"

    monkeypatch.setattr(lensrl.report, "build_report", fake_build)
    assert main(["report", *map(str, runs), "--out", str(tmp_path / "r"), "--margin", "2"]) == 0
    assert calls == [([str(r) for r in runs], tmp_path / "r", {"primary": None, "margin": 0.02})]
    monkeypatch.undo()
    assert main(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "r2")]) == 2


def test_runs_sharing_a_name_are_keyed_by_folder(runs: list[Path], tmp_path: Path) -> None:
    """Two runs of one preset carry the preset's run name: the report names them by folder."""
    import json

    for run in runs:
        cfg = json.loads((run / "config.json").read_text())
        cfg["run"]["name"] = "smoke"
        (run / "config.json").write_text(json.dumps(cfg))
    md = (build_report(runs, tmp_path / "rep").parent / "report.md").read_text()
    for run in runs:
        assert f"| {run} |" in md  # each run's row, under its folder
    assert "%" in md  # pass@k cells in percent


def test_a_failed_report_leaves_no_folder(runs: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "rep"
    with pytest.raises(FileNotFoundError, match="nowhere"):
        build_report([*runs, tmp_path / "nowhere"], out)
    assert not out.exists()
