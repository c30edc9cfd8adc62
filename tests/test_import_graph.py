"""The layers import each other only downwards (tests/README.md): the math knows nothing of
lensrl; evaluation, reports and the run-folder readers need no torch and nothing of training;
no module reaches into another module's private (``_``) names."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import lensrl

SRC = Path(lensrl.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, imported module, names) of every import in ``path``, relative ones resolved."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            mod = ".".join([*base, *([node.module] if node.module else [])])
            out.append((node.lineno, mod, [a.name for a in node.names]))
    return out


def test_no_module_imports_another_modules_private_names():
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        me = module_name(path)
        for line, mod, names in imports(path):
            if not mod.startswith("lensrl"):
                continue
            for name in names:
                # a package may use its own private submodules (lensrl.verify -> _worker)
                inside = me == mod or me.startswith(mod + ".")
                if name.startswith("_") and not name.startswith("__") and not inside:
                    bad.append(f"{path.relative_to(SRC)}:{line} imports {mod}.{name}")
    assert not bad, "\n".join(bad)


def test_eval_report_and_run_readers_need_no_torch_and_no_training():
    """Imported in a fresh interpreter: what a notebook comparing finished runs pays for."""
    code = (
        "import sys, lensrl.eval, lensrl.eval.compare, lensrl.report, lensrl.runlog\n"
        "print(' '.join(sorted(m for m in sys.modules if m == 'torch' or m.startswith('lensrl'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(out.stdout.split())
    assert "torch" not in loaded
    training = {"lensrl.trainer", "lensrl.setup", "lensrl.sft", "lensrl.policy", "lensrl.rollout",
                "lensrl.batching", "lensrl.decode", "lensrl.config", "lensrl.checkpoint"}
    assert not loaded & training, loaded & training
