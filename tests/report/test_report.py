"""The report from fake run folders: files, embedded images, tables; light imports; the CLI."""

from __future__ import annotations

import ast
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
    assert "Paired comparison against GRPO" in html and "lens − grpo" in html
    md = (out / "report.md").read_text()
    pngs = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert pngs == ["training_curves.png", "pass_at_k.png", "lens_diagnostics.png"]
    assert all((out / p).read_bytes().startswith(b"\x89PNG") for p in pngs)
    assert "| L4–5 | 16 |" in md  # levels 4–5 of 40 problems with levels 1 + j % 5
    assert "steps [40, 40]" in md  # the latest evaluation of each seed


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
    "lensrl.trainer",
    "lensrl.policy",
    "lensrl.rollout",
    "torch",
    "transformers",
    "matplotlib.pyplot",
)


def test_report_imports_stay_light() -> None:
    """lensrl.report and the eval modules it uses read files: no trainer, model code or pyplot.

    (``import lensrl`` itself pulls in torch through ``lensrl.core``; that is not ours to fix.)
    """
    src = Path(lensrl.report.__file__).parents[1]
    files = [*(src / "report").glob("*.py")] + [
        src / "eval" / f for f in ("passk.py", "runs.py", "evaluate.py", "compare.py")
    ]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.col_offset == 0:
                names = [node.module or ""]  # top level only: evaluate() imports lazily
            else:
                continue
            if node.col_offset == 0:
                bad = [n for n in names if n.startswith(LIGHT)]
                assert not bad, f"{path.name} imports {bad}"


def test_cli_report(runs: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_build(run_dirs: list[str], out: Path) -> Path:
        calls.append((run_dirs, out))
        return out / "index.html"

    monkeypatch.setattr(lensrl.report, "build_report", fake_build)
    assert main(["report", *map(str, runs), "--out", str(tmp_path / "r")]) == 0
    assert calls == [([str(r) for r in runs], tmp_path / "r")]
    monkeypatch.undo()
    assert main(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "r2")]) == 2
