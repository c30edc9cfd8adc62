"""The verifier from any kind of script: its workers never run the caller's code again.

Each test runs a small script in a fresh interpreter. The script appends a line to a marker file
at top level (no ``if __name__ == "__main__":`` guard), judges a few pairs and prints the verdicts
as JSON. The checks: the verdicts are right and the marker has exactly one line per process, i.e.
no worker re-imported the caller's main module (multiprocessing's ``spawn``/``forkserver`` did,
once per worker and once more per replacement).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# every test runs a script in a fresh interpreter, which starts a verifier server
pytestmark = pytest.mark.slow

SRC = Path(__file__).resolve().parents[2] / "src"

# Two workers and a hostile pair with a short timeout, so a worker is also killed and replaced.
SCRIPT = textwrap.dedent(
    """
    import json, os
    with open(os.environ["LENSRL_TEST_MARKER"], "a") as f:
        f.write("ran\\n")
    from lensrl.verify import VerifierPool
    pool = VerifierPool(workers=2, timeout=1.0)
    got = pool.verify_batch(
        ["\\\\frac12", "3", "x \\\\geq 5", "3"],
        ["so \\\\boxed{0.5}", "\\\\boxed{4}", "\\\\boxed{x >= 5}", "\\\\boxed{9^{9^{9^{9}}}}"],
    )
    print("VERDICTS", json.dumps([[v.correct, v.reason] for v in got]))
    pool.close()
    """
)
EXPECTED = [[True, "equal"], [False, "not equal"], [True, "equal"], [False, "timeout"]]


def _env(marker: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["LENSRL_TEST_MARKER"] = str(marker)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    return env


def _run(cmd: list[str], marker: Path, stdin: str | None = None) -> list[list[object]]:
    out = subprocess.run(
        cmd, input=stdin, capture_output=True, text=True, timeout=180, env=_env(marker),
        cwd=marker.parent,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("VERDICTS ")]
    assert len(lines) == 1, out.stdout + out.stderr[-3000:]
    verdicts: list[list[object]] = json.loads(lines[0].removeprefix("VERDICTS "))
    return verdicts


@pytest.mark.parametrize("style", ["script", "stdin", "dash-c"])
def test_unguarded_script_runs_once(tmp_path: Path, style: str) -> None:
    marker = tmp_path / "marker.txt"
    script = tmp_path / "user_script.py"
    script.write_text(SCRIPT)
    if style == "script":
        got = _run([sys.executable, str(script)], marker)
    elif style == "stdin":
        got = _run([sys.executable, "-"], marker, stdin=SCRIPT)
    else:
        got = _run([sys.executable, "-c", SCRIPT], marker)
    assert got == EXPECTED
    assert marker.read_text() == "ran\n"


def test_notebook_style_main(tmp_path: Path) -> None:
    """IPython/Jupyter when installed; else the same situation simulated: the code runs by
    ``exec`` in a fresh ``__main__`` module that has no ``__file__``, as in a notebook cell."""
    marker = tmp_path / "marker.txt"
    cell = tmp_path / "cell.py"
    cell.write_text(SCRIPT)
    if importlib.util.find_spec("IPython") is not None:
        got = _run([sys.executable, "-m", "IPython", "--quick", "--no-banner", str(cell)], marker)
    else:
        runner = textwrap.dedent(
            f"""
            import sys, types
            main = types.ModuleType("__main__")
            sys.modules["__main__"] = main
            code = open({str(cell)!r}).read()
            exec(compile(code, "<ipython-input-1>", "exec"), main.__dict__)
            """
        )
        got = _run([sys.executable, "-c", runner], marker)
    assert got == EXPECTED
    assert marker.read_text() == "ran\n"


def test_inside_a_daemonic_process(tmp_path: Path) -> None:
    """As in a reward worker that is itself a daemonic ``multiprocessing`` child, which
    ``multiprocessing`` forbids to start children of its own."""
    marker = tmp_path / "marker.txt"
    script = tmp_path / "daemon_script.py"
    script.write_text(
        textwrap.dedent(
            """
            import json, multiprocessing as mp, os
            with open(os.environ["LENSRL_TEST_MARKER"], "a") as f:
                f.write("ran\\n")

            def child(q):
                from lensrl.integrations.verl_reward import compute_score
                q.put(compute_score("math", "so \\\\boxed{7}", "7")["score"])

            if __name__ == "__main__":
                q = mp.get_context("fork").Queue()
                p = mp.get_context("fork").Process(target=child, args=(q,), daemon=True)
                p.start()
                print("VERDICTS", json.dumps([[q.get(timeout=120)]]))
                p.join(timeout=30)
            """
        )
    )
    assert _run([sys.executable, str(script)], marker) == [[1.0]]
    assert marker.read_text() == "ran\n"


def test_verl_reward_function_from_a_plain_script(tmp_path: Path) -> None:
    """``compute_score`` as a verl reward worker calls it (no verl needed: it imports none)."""
    marker = tmp_path / "marker.txt"
    script = textwrap.dedent(
        """
        import json, os
        with open(os.environ["LENSRL_TEST_MARKER"], "a") as f:
            f.write("ran\\n")
        from lensrl.integrations.verl_reward import compute_score
        rows = [("so \\\\boxed{12}", "12"), ("\\\\boxed{13}", "12"), ("\\\\boxed{1}", "")]
        got = [compute_score("math", s, g) for s, g in rows]
        print("VERDICTS", json.dumps([[r["score"], r["judged"]] for r in got]))
        """
    )
    (tmp_path / "reward.py").write_text(script)
    got = _run([sys.executable, str(tmp_path / "reward.py")], marker)
    assert got == [[1.0, True], [0.0, True], [0.0, False]]
    assert marker.read_text() == "ran\n"


@pytest.mark.slow  # imports TRL and transformers
def test_trl_reward_function_in_an_unguarded_script(tmp_path: Path) -> None:
    pytest.importorskip("trl")
    marker = tmp_path / "marker.txt"
    script = textwrap.dedent(
        """
        import json, os
        with open(os.environ["LENSRL_TEST_MARKER"], "a") as f:
            f.write("ran\\n")
        from lensrl.integrations.trl import accuracy_reward
        got = accuracy_reward(
            completions=["so \\\\boxed{12}", [{"role": "assistant", "content": "\\\\boxed{5}"}]],
            answer=["12", "6"],
        )
        print("VERDICTS", json.dumps([got]))
        """
    )
    (tmp_path / "train.py").write_text(script)
    assert _run([sys.executable, str(tmp_path / "train.py")], marker) == [[1.0, 0.0]]
    assert marker.read_text() == "ran\n"


@pytest.mark.slow  # accelerate's launcher imports torch before it starts the script
def test_accelerate_launch(tmp_path: Path) -> None:
    launcher = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    if launcher is None:
        pytest.skip("accelerate is not installed (the trl extra)")
    marker = tmp_path / "marker.txt"
    script = tmp_path / "launched.py"
    script.write_text(SCRIPT)
    cmd = [launcher, "launch", "--cpu", "--num_processes", "1", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", str(script)]
    assert _run(cmd, marker) == EXPECTED
    assert marker.read_text() == "ran\n"


@pytest.mark.slow  # starts two servers one after the other
def test_pool_used_in_a_forked_child(tmp_path: Path) -> None:
    """A process forked from the caller (a data-loader worker, say) that uses the caller's pool
    starts its own server; the parent's pool keeps working."""
    marker = tmp_path / "marker.txt"
    script = textwrap.dedent(
        """
        import json, os
        with open(os.environ["LENSRL_TEST_MARKER"], "a") as f:
            f.write("ran\\n")
        from lensrl.verify import VerifierPool
        pool = VerifierPool(workers=1)
        first = pool.verify(gold="2", prediction="\\\\boxed{2}").correct
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            ok = pool.verify(gold="5", prediction="\\\\boxed{5}").correct
            os.write(write, b"1" if ok else b"0")
            pool.close()
            os._exit(0)
        os.waitpid(pid, 0)
        child = os.read(read, 1) == b"1"
        after = pool.verify(gold="3", prediction="\\\\boxed{4}").correct
        print("VERDICTS", json.dumps([[first, child, after]]))
        """
    )
    (tmp_path / "forking.py").write_text(script)
    assert _run([sys.executable, str(tmp_path / "forking.py")], marker) == [[True, True, False]]
    assert marker.read_text() == "ran\n"
