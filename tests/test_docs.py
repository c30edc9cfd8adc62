"""The docs stand alone: every path and make target they name exists, nothing cites a file
outside the repository, and the TRL example runs as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
# `docs/...` or `src/...`, not inside a longer path or URL
PATH_RE = re.compile(r"(?<![\w./-])((?:docs|src)/[\w./*<>-]*[\w/])")
MAKE_RE = re.compile(r"`make ([\w-]+)")
OUTSIDE = re.compile(r"\b(?:LENS|INTEGRATIONS|ENVIRONMENT|STYLE)\.md\b|\.\./shared")


def _named_paths(text: str) -> set[str]:
    return {m.group(1) for m in PATH_RE.finditer(text)
            if not any(c in m.group(1) for c in "*<>")}  # globs and placeholders


def test_every_named_path_exists() -> None:
    assert sum(len(_named_paths(doc.read_text())) for doc in DOCS) > 20  # the pattern finds them
    missing = [f"{doc.relative_to(ROOT)}: {path}" for doc in DOCS
               for path in sorted(_named_paths(doc.read_text())) if not (ROOT / path).exists()]
    assert not missing, missing


def test_every_named_make_target_exists() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([\w-]+):", makefile, re.MULTILINE))
    named = {(doc.relative_to(ROOT), t) for doc in DOCS for t in MAKE_RE.findall(doc.read_text())}
    assert named, "the docs name no make target: the pattern is broken"
    missing = sorted(f"{doc}: make {t}" for doc, t in named if t not in targets)
    assert not missing, missing


def test_nothing_cites_a_file_outside_the_repository() -> None:
    files = [*DOCS, *(ROOT / "src").rglob("*.py"), *(ROOT / "src").rglob("*.yaml")]
    cited = [f"{f.relative_to(ROOT)}:{i}" for f in files
             for i, line in enumerate(f.read_text().splitlines(), 1) if OUTSIDE.search(line)]
    assert not cited, cited


def test_the_top_level_is_what_the_readme_file_map_lists() -> None:
    """``ls src/lensrl`` shows the architecture: at most 8 modules beside the packages, and each
    module and package is in the README's file map."""
    top = ROOT / "src" / "lensrl"
    modules = sorted(p.name for p in top.glob("*.py"))
    packages = sorted(p.name + "/" for p in top.iterdir() if (p / "__init__.py").is_file())
    file_map = (ROOT / "README.md").read_text().split("## Files", 1)[1].split("```")[1]
    assert len(modules) <= 8, modules
    unnamed = [name for name in modules + packages
               if name not in ("__init__.py", "__main__.py") and name not in file_map]
    assert not unnamed, f"not in README.md's file map: {unnamed}"


def test_the_path_pattern_finds_paths() -> None:
    text = "see docs/algorithm.md §6, `src/lensrl/core/` and (docs/evaluation.md) but not x/docs/y"
    assert _named_paths(text) == {"docs/algorithm.md", "src/lensrl/core/", "docs/evaluation.md"}


@pytest.mark.slow
def test_trl_example_runs_as_written_on_a_cpu(tmp_path: Path) -> None:
    pytest.importorskip("trl")
    text = (ROOT / "docs" / "integrations.md").read_text()
    block = text.split("### Using it", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert "LensGRPOConfig(" in block and "..." not in block
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "train_runtime" in out.stdout + out.stderr
