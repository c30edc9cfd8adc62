"""Hostile input: every call returns within its time limit plus a small overhead, a hung worker is
replaced, nothing is ever executed, and hostile output never counts as correct."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from lensrl.verify import Verdict, VerifierPool
from lensrl.verify import verdict as R
from lensrl.verify.bench import HOSTILE
from lensrl.verify.pool import RETRY_FACTOR, RETRY_ROUNDS

TIMEOUT = 1.0
# Killing and replacing a worker takes ~50 ms; the rest is slack for a loaded 2-core machine.
OVERHEAD = 1.5


def _limit(pool: VerifierPool, retried_before: int) -> float:
    """The bound of the hostile pairs of one call: their limit, and RETRY_FACTOR × it for each
    pair retried because the machine was so loaded that its worker was starved
    (lensrl.verify.pool: a retry, not a verdict; one pair can be retried RETRY_ROUNDS times)."""
    retries = pool.stats["retried"] - retried_before
    return TIMEOUT * (1 + RETRY_FACTOR * retries) + OVERHEAD


@pytest.mark.parametrize(("name", "prediction"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_prediction_is_bounded(pool: VerifierPool, name: str, prediction: str) -> None:
    start, retried = time.perf_counter(), pool.stats["retried"]
    v = pool.verify(gold="3", prediction=prediction, timeout=TIMEOUT)
    elapsed = time.perf_counter() - start
    assert elapsed < _limit(pool, retried), f"{name} took {elapsed:.2f} s"
    assert v.correct is False, f"{name}: {v}"  # the prediction's fault: wrong, not "cannot judge"
    assert pool.verify(gold="3", prediction="\\boxed{3}").correct is True, "pool broken after"


@pytest.mark.parametrize(
    ("gold", "reason"),
    [
        ("10^{10^{10}}", R.TIMEOUT),
        ("9^{9^{9^{9}}}", R.TIMEOUT),
        ("{" * 30 + "3" + "}" * 30, R.TOO_NESTED),
        ("1+" * 600_000 + "1", R.TOO_LONG),
        ("3\x00", R.INVALID_CHARS),
    ],
    ids=["huge power", "power tower", "deep braces", "megabyte", "null byte"],
)
def test_hostile_gold_is_cannot_judge(pool: VerifierPool, gold: str, reason: str) -> None:
    start, retried = time.perf_counter(), pool.stats["retried"]
    got = pool.verify_batch([gold] * 3, ["\\boxed{3}", "\\boxed{4}", "no answer"], timeout=TIMEOUT)
    # one hang, then the gold is known bad (on a loaded machine: each pair once more, alone)
    assert time.perf_counter() - start < _limit(pool, retried)
    assert [v.correct for v in got] == [None, None, None]
    assert got[0].reason == reason


def test_nothing_is_executed(pool: VerifierPool, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payloads = [
        f"__import__('os').system('touch {marker}')",
        f"exec(\"open('{marker}', 'w')\")",
        f"eval('open(\\'{marker}\\', \\'w\\')')",
        f"(lambda: __import__('os').system('touch {marker}'))()",
    ]
    preds = [f"\\boxed{{{p}}}" for p in payloads] + [f"The answer is {p}" for p in payloads]
    golds = ["3"] * len(preds) + payloads
    preds += ["\\boxed{3}"] * len(payloads)
    got = pool.verify_batch(golds, preds)
    assert not marker.exists()
    assert all(v.correct is not True for v in got[: 2 * len(payloads)])
    # The verdicts must not depend on the digits in pytest's tmp path (``.../pytest-3/...``):
    # the same payloads with the gold's digit in their path are still not correct.
    digits = [p.replace(str(marker), "/tmp/pytest-of-u/pytest-3/3/pwned") for p in payloads]
    got = pool.verify_batch(["3"] * 2 * len(digits), [f"The answer is {p}" for p in digits]
                            + [f"Answer: {p}" for p in digits])
    assert all(v.correct is False for v in got), got


def test_stuck_workers_are_replaced_and_batch_completes(pool: VerifierPool) -> None:
    before = pool.stats["restarts"]
    golds = ["3"] * 12
    preds = ["\\boxed{9^{9^{9^{9}}}}", "\\boxed{3}", "\\boxed{(10^{10})!}"] + ["\\boxed{3}"] * 9
    preds[5] = "\\boxed{2+1}"
    start, retried = time.perf_counter(), pool.stats["retried"]
    got = pool.verify_batch(golds, preds, timeout=TIMEOUT)
    assert time.perf_counter() - start < TIMEOUT + _limit(pool, retried)
    assert [v.reason for v in got[:3]] == [R.TIMEOUT, R.EQUAL, R.TIMEOUT]
    assert all(v.correct is True for v in got[3:])
    assert pool.stats["restarts"] >= before + 2


def test_killed_worker_is_replaced(pool: VerifierPool) -> None:
    assert pool.verify(gold="1", prediction="\\boxed{1}").correct is True
    pids = [w.pid for w in pool._pool]
    for pid in pids:  # a worker dying between calls (OOM killer, a stray signal)
        os.kill(pid, 9)
    time.sleep(0.1)  # its server reaps it
    assert pool.verify(gold="2", prediction="\\boxed{2}").correct is True


def test_worker_killed_mid_job_is_a_crash(pool: VerifierPool) -> None:
    import threading

    result: dict[str, object] = {}
    hang = "\\boxed{9^{9^{9^{9}}}}"
    thread = threading.Thread(
        target=lambda: result.update(v=pool.verify(gold="3", prediction=hang, timeout=30))
    )
    thread.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(w.jobs for w in pool._pool):
        time.sleep(0.01)
    time.sleep(0.3)  # let it get into the prediction
    for w in list(pool._pool):
        if w.jobs:
            os.kill(w.pid, 9)  # the OOM killer, say
    thread.join(timeout=10)
    assert result["v"] == Verdict(False, R.CRASHED, "9^{9^{9^{9}}}")
    assert pool.verify(gold="3", prediction="\\boxed{3}").correct is True


def test_a_timeout_on_a_starved_worker_is_retried_with_a_longer_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker that got too little CPU (a loaded machine) has its pair judged again with
    RETRY_FACTOR × the limit, RETRY_ROUNDS times while it stays starved, before the pair counts
    as a timeout; on a CPU of its own, not."""
    from lensrl.verify import _ipc

    hang = "\\boxed{9^{9^{9^{9}}}}"
    with VerifierPool(workers=1, timeout=TIMEOUT) as p:
        p.start()
        start = time.perf_counter()
        assert p.verify(gold="3", prediction=hang).reason == R.TIMEOUT
        idle = time.perf_counter() - start
        assert p.stats["retried"] == 0 or idle > TIMEOUT * (1 + RETRY_FACTOR)  # loaded machine
        # always starved from here: every round retries, and the last round's timeout counts
        monkeypatch.setattr(_ipc.Worker, "starved", lambda self, share: True)
        retried = p.stats["retried"]
        start = time.perf_counter()
        got = p.verify_batch(["3", "3"], [hang, "\\boxed{3}"])
        elapsed = time.perf_counter() - start
        assert [v.reason for v in got] == [R.TIMEOUT, R.EQUAL]
        assert p.stats["retried"] == retried + RETRY_ROUNDS
        bound = TIMEOUT * (1 + RETRY_FACTOR * RETRY_ROUNDS)
        assert bound <= elapsed < bound + OVERHEAD
        assert p.stats["timeout_verdicts"] >= 2


def test_cpu_seconds_of_this_process() -> None:
    from lensrl.verify._ipc import cpu_seconds

    before = cpu_seconds(os.getpid())
    if before is None:
        pytest.skip("no /proc: every timeout is retried")
    end = time.process_time() + 0.2
    while time.process_time() < end:
        pass
    after = cpu_seconds(os.getpid())
    assert after is not None and 0.1 <= after - before <= 5.0
