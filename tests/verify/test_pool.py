"""VerifierPool mechanics and the public entry points."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import lensrl.verify
from lensrl.verify import Verdict, VerifierPool, verify, verify_batch

VERIFY_DIR = Path(lensrl.verify.__file__).parent


def test_batch_matches_single_calls_and_keeps_order(pool: VerifierPool) -> None:
    golds = ["1", "2", "\\frac12", "", "x^2", "3"] * 3
    preds = ["\\boxed{1}", "\\boxed{3}", "\\boxed{0.5}", "\\boxed{1}", "\\boxed{x*x}", "none"] * 3
    batch = pool.verify_batch(golds, preds)
    assert batch == [pool.verify(gold=g, prediction=p) for g, p in zip(golds, preds)]
    assert [v.correct for v in batch[:6]] == [True, False, True, None, True, False]


def test_identical_pairs_are_judged_once(pool: VerifierPool) -> None:
    before = dict(pool.stats)
    got = pool.verify_batch(["7"] * 8, ["\\boxed{7}"] * 4 + ["\\boxed{8}"] * 4)
    assert [v.correct for v in got] == [True] * 4 + [False] * 4
    assert pool.stats["pairs"] - before["pairs"] == 8
    assert pool.stats["judged"] - before["judged"] == 2


def test_verdict_is_frozen() -> None:
    v = Verdict(True, "equal", "3")
    with pytest.raises(AttributeError):
        v.correct = False  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs",
    [{"workers": 0}, {"timeout": 0}, {"timeout": float("nan")}, {"max_memory_mb": 0}],
)
def test_bad_pool_arguments(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        VerifierPool(**kwargs)  # type: ignore[arg-type]


def test_bad_call_arguments(pool: VerifierPool) -> None:
    with pytest.raises(ValueError, match="2 golds but 1 predictions"):
        pool.verify_batch(["1", "2"], ["1"])
    with pytest.raises(ValueError, match="timeout"):
        pool.verify_batch(["1"], ["1"], timeout=-1)
    with pytest.raises(TypeError):
        pool.verify(gold=["1"], prediction="\\boxed{1}")  # type: ignore[arg-type]
    assert pool.verify_batch([], []) == []


def test_numbers_and_none_are_accepted(pool: VerifierPool) -> None:
    assert pool.verify(gold=42, prediction="\\boxed{42}").correct is True  # type: ignore[arg-type]
    assert pool.verify(gold="42", prediction=None).correct is False  # type: ignore[arg-type]
    assert pool.verify(gold=None, prediction="\\boxed{42}").correct is None  # type: ignore[arg-type]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_context_manager_stops_workers() -> None:
    with VerifierPool(workers=2, timeout=5.0) as p:
        assert p.verify(gold="1", prediction="\\boxed{1}").correct is True
        pids = [w.pid for w in p._pool]
        assert p._server is not None
        server = p._server.process
    assert len(pids) == 2 and server.poll() is not None
    deadline = time.monotonic() + 5.0
    while not all(_gone(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert all(_gone(pid) for pid in pids)


def test_module_level_functions() -> None:
    assert verify(gold="3\\sqrt{2}", prediction="\\boxed{\\sqrt{18}}").correct is True
    got = verify_batch(["1", "2"], ["The answer is 1", "The answer is 1"], strict=True)
    assert [v.reason for v in got] == ["no boxed answer", "no boxed answer"]


def test_import_does_not_load_math_verify() -> None:
    code = "import lensrl.verify, sys; print('math_verify' in sys.modules, 'sympy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["False", "False"], out.stderr


ALLOWED = {"latex2sympy2_extended", "math_verify", "sympy", "lensrl"}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted(VERIFY_DIR.glob("*.py")), ids=lambda p: p.name)
def test_verify_imports_no_torch_and_evaluates_nothing(path: Path) -> None:
    foreign = {n for n in _imports(path) if n not in sys.stdlib_module_names} - ALLOWED
    assert not foreign, f"{path.name} imports {foreign}"
    tree = ast.parse(path.read_text())
    builtins = {
        n.func.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    }
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    names |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert not builtins & {"eval", "exec", "compile", "__import__"}, path.name
    assert not names & {"parse_expr", "sympify", "ExprExtractionConfig"}, path.name


FAKE_SERVER = """
import os, socket, struct, sys
from multiprocessing.connection import Connection
control = socket.socket(fileno=int(sys.argv[1]))
data, fds, _, _ = socket.recv_fds(control, 8, 2)
conn = Connection(fds[0])
control.sendall(struct.pack("<q", os.getpid()))
conn.recv_bytes()
conn.send_bytes(b'{"not": "a result"}')
conn.recv_bytes()
"""


@pytest.mark.parametrize(
    ("server", "start_s", "error"),
    [
        pytest.param("import sys; sys.stderr.write('no sympy here'); sys.exit(3)", None,
                     "(?s)exited with code 3.*no sympy here", id="cannot-start"),
        pytest.param("import time; time.sleep(60)", 1.0,
                     "did not start a worker within 1 s", id="hangs"),
        pytest.param(FAKE_SERVER, None, "protocol error: worker .* sent b'{\"not\"",
                     id="protocol-error"),
    ],
)
def test_server_failure_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, server: str, start_s: float | None, error: str
) -> None:
    """A server that exits, hangs or breaks the protocol: a VerifierError naming why, quickly."""
    from lensrl.verify import VerifierError, _ipc

    monkeypatch.setattr(_ipc, "server_command", lambda fd: [sys.executable, "-c", server, str(fd)])
    if start_s is not None:
        monkeypatch.setattr(_ipc, "SERVER_START_S", start_s)
    p = VerifierPool(workers=1, timeout=1.0)
    try:
        start = time.perf_counter()
        with pytest.raises(VerifierError, match=error):
            p.verify(gold="1", prediction="\\boxed{1}")
        assert time.perf_counter() - start < 10
    finally:
        p.close()


def test_strict_default_of_the_pool(pool: VerifierPool) -> None:
    with VerifierPool(workers=1, strict=True) as strict_pool:
        assert strict_pool.verify(gold="4", prediction="The answer is 4").reason == "no boxed answer"
        assert strict_pool.verify(gold="4", prediction="The answer is 4", strict=False).correct
    assert pool.verify(gold="4", prediction="The answer is 4").correct is True
