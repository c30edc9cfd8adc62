"""Run folders that two processes cannot corrupt, and a clean Ctrl-C / SIGTERM: each test
drives `lensrl train` in subprocesses, as a user at two terminals (or a scheduler) would."""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lensrl.runs import RunLock, RunLockedError

# every test drives `lensrl train` (or a lock holder) in subprocesses
pytestmark = pytest.mark.slow

ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def cli(run_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "lensrl", "train", "--preset", "smoke", "--run-dir",
            str(run_dir), "--no-progress", "--set", "model.dtype=float32", *args]


def steps(run_dir: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def rows_without_time(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in rows]


def both(cmd_a: list[str], cmd_b: list[str]) -> list[tuple[int, str, int]]:
    """Start two commands at the same moment; (return code, stderr, pid) of each."""
    procs = [subprocess.Popen(c, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for c in (cmd_a, cmd_b)]
    out = []
    for p in procs:
        _, err = p.communicate(timeout=600)
        out.append((p.returncode, err, p.pid))
    return out


def one_ran_one_refused(results: list[tuple[int, str, int]], run_dir: Path) -> None:
    codes = sorted(rc for rc, _, _ in results)
    assert codes == [0, 2], results
    (_, winner, winner_pid), = [r for r in results if r[0] == 0]
    (_, refused, _), = [r for r in results if r[0] == 2]
    assert str(run_dir) in refused and f"pid {winner_pid}" in refused, refused


def test_lock_names_the_owner_and_dies_with_it(tmp_path):
    lock = RunLock(tmp_path).acquire()
    with pytest.raises(RunLockedError, match=f"pid {os.getpid()}"):
        RunLock(tmp_path).acquire()
    lock.release()
    RunLock(tmp_path).acquire().release()
    # a holder killed with SIGKILL leaves no stale lock
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from lensrl.runs import RunLock; "
        f"RunLock({str(tmp_path)!r}).acquire(); print('locked', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(RunLockedError, match=f"pid {holder.pid}"):
        RunLock(tmp_path).acquire()
    holder.kill()
    holder.wait()
    RunLock(tmp_path).acquire().release()


def test_two_trains_at_once(tmp_path):
    run_dir = tmp_path / "run"
    one_ran_one_refused(both(cli(run_dir, "--steps", "8"), cli(run_dir, "--steps", "8")), run_dir)
    assert steps(run_dir) == list(range(1, 9))


def test_two_resumes_at_once(tmp_path):
    run_dir = tmp_path / "run"
    subprocess.run(cli(run_dir, "--steps", "2"), env=ENV, check=True, capture_output=True)
    resume = cli(run_dir, "--steps", "10", "--resume")
    one_ran_one_refused(both(resume, resume), run_dir)
    assert steps(run_dir) == list(range(1, 11))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("full") / "run"
    subprocess.run(cli(run_dir, "--steps", "10"), env=ENV, check=True, capture_output=True)
    return run_dir


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_checkpoints_and_resume_matches(tmp_path, uninterrupted, sig):
    """The signal goes to the whole process group, as Ctrl-C in a terminal does (and as
    schedulers send SIGTERM), at a random step; the run checkpoints the step it was in, says
    how to resume, exits 128 + signal, and the printed command finishes it like a run that was
    never stopped."""
    run_dir = tmp_path / "run"
    after = random.Random(int(sig)).randint(2, 5)  # metric rows before the signal
    proc = subprocess.Popen(cli(run_dir, "--steps", "10"), env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    metrics = run_dir / "metrics.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= after:
            break
        time.sleep(0.02)
    os.killpg(proc.pid, sig)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + sig, err
    found = re.search(r"interrupted at step (\d+); continue with `([^`]*)`", err)
    assert found, err
    step = int(found.group(1))
    assert after <= step < 10 and "Traceback" not in err
    assert steps(run_dir) == list(range(1, step + 1))
    assert (run_dir / "checkpoints" / f"step_{step}" / "trainer_state.pt").is_file()
    command = shlex.split(found.group(2))
    assert command[:2] == ["lensrl", "train"] and command[-1] == "--resume"
    subprocess.run([sys.executable, "-m", "lensrl", *command[1:]], env=ENV, check=True,
                   capture_output=True)
    assert rows_without_time(run_dir) == rows_without_time(uninterrupted)
