"""lensrl.core imports only torch and the standard library."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import lensrl.core

CORE = Path(lensrl.core.__file__).parent
ALLOWED_TOP = set(sys.stdlib_module_names) | {"torch", "__future__"}


def test_core_source_imports_only_torch_and_stdlib() -> None:
    """Static: every import statement in core/*.py names stdlib, torch or lensrl.core."""
    files = sorted(CORE.glob("*.py"))
    assert {f.name for f in files} >= {
        "advantages.py",
        "confidence.py",
        "diagnostics.py",
        "loss.py",
    }
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                # `from . import x` stays inside core; `from .. import x` would leave it
                assert node.level <= 1, f"{path.name}:{node.lineno} imports outside core"
                names = [] if node.level else [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                ok = top in ALLOWED_TOP or name == "lensrl.core" or name.startswith("lensrl.core.")
                assert ok, f"{path.name}:{node.lineno} imports {name}"


@pytest.mark.slow  # a fresh interpreter (a subprocess)
def test_importing_core_loads_nothing_beyond_torch() -> None:
    """Dynamic: after `import torch`, `import lensrl.core` adds only stdlib and lensrl.core.*.

    This also covers ``lensrl/__init__.py``, which runs first and must stay as light.
    """
    code = (
        "import sys, json, torch\n"
        "before = set(sys.modules)\n"
        "import lensrl.core\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    new = json.loads(out.stdout.strip().splitlines()[-1])
    bad = [
        m
        for m in new
        if m.split(".")[0] not in sys.stdlib_module_names
        and m != "lensrl"
        and m != "lensrl.core"
        and not m.startswith("lensrl.core.")
    ]
    assert not bad, f"lensrl.core pulled in {bad}"
    assert "lensrl.core.advantages" in new
