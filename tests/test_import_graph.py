"""The layers import each other only downwards (tests/README.md): the math knows nothing of
lensrl; evaluation, reports and the run-folder readers need no torch and nothing of training;
no module reaches into another module's private (``_``) names."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

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


@pytest.mark.slow  # a fresh interpreter (a subprocess)
def test_eval_report_and_run_readers_need_no_torch_and_no_training():
    """Imported in a fresh interpreter: what a notebook comparing finished runs pays for."""
    code = (
        "import sys, lensrl.eval, lensrl.compare.cli, lensrl.report, lensrl.runs\n"
        "print(' '.join(sorted(m for m in sys.modules if m == 'torch' or m.startswith('lensrl'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(out.stdout.split())
    assert "torch" not in loaded
    training = {m for m in loaded if m == "lensrl.train" or m.startswith("lensrl.train.")}
    training |= loaded & {"lensrl.policy", "lensrl.rollout", "lensrl.decode", "lensrl.study"}
    assert not training, training


def _module_level_edges() -> dict[str, set[str]]:
    """lensrl module -> the lensrl modules it imports at import time (not inside functions)."""
    names = {module_name(p) for p in SRC.rglob("*.py")}
    edges: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        me = module_name(path)
        tree = ast.parse(path.read_text())
        nodes = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
        in_function = {id(n) for f in ast.walk(tree)
                       if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
                       for n in ast.walk(f)}
        found = set()
        for line, mod, imported in imports(path):
            if not any(n.lineno == line and id(n) not in in_function for n in nodes):
                continue
            for target in [mod, *(f"{mod}.{n}" for n in imported)]:
                if target in names and target != me and not me.startswith(target + "."):
                    found.add(target)  # a package's __init__ runs before its submodules: no edge
        edges[me] = found
    return edges


def test_no_import_cycles_between_modules():
    edges = _module_level_edges()
    cycles = []
    for a, targets in edges.items():
        for b in targets:
            if a in edges.get(b, set()) and a < b:
                cycles.append(f"{a} <-> {b}")
    assert not cycles, cycles
    # the verl bridge and its trainer share state through verl_state, one way only
    assert "lensrl.integrations.verl" not in edges["lensrl.integrations.verl_trainer"]


def test_every_lensrl_name_imported_anywhere_exists():
    """Imports inside functions run only when their branch does (a benchmark section, an
    optional path); check them all here, so a moved name fails fast and not in a user's run."""
    import importlib

    missing = []
    for path in sorted(SRC.rglob("*.py")):
        for line, mod, names in imports(path):
            if not mod.startswith("lensrl"):
                continue
            try:
                module = importlib.import_module(mod)
            except ModuleNotFoundError as err:  # an optional extra (verl) is not installed
                if err.name and err.name.split(".")[0] in ("verl", "transfer_queue", "ray"):
                    continue
                raise
            for name in names:
                if name != "*" and not hasattr(module, name):
                    try:
                        importlib.import_module(f"{mod}.{name}")
                    except ModuleNotFoundError:
                        missing.append(f"{path.relative_to(SRC)}:{line} {mod}.{name}")
    assert not missing, "\n".join(missing)
