"""A pool of verifier processes with a wall-clock limit per pair, and the public entry points.

The calling process extracts answers (cheap string work, :mod:`lensrl.verify.extract`), rejects
oversized or malformed ones, de-duplicates identical pairs, and sends the rest in chunks to worker
processes that run Math-Verify (:mod:`lensrl.verify._worker`). A pair that runs past ``timeout``
has its worker killed and replaced; the pair gets a ``"timeout"`` verdict and the rest of its chunk
is re-queued, so every call returns within about ``timeout`` per hostile pair plus a small
overhead. No thread is used: one ``multiprocessing.connection.wait`` loop drives all workers.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import multiprocessing as mp
import os
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from lensrl.verify import verdict as R
from lensrl.verify.prepare import Prepared, finish, prepare
from lensrl.verify.verdict import Verdict

# Mirrors lensrl.verify._worker, which the parent must not import (it loads Math-Verify).
_SEQ, _POS, _PHASE, _START, _STATUS_SIZE = 0, 1, 2, 3, 4
_PHASE_GOLD = 0.0
_STARTUP_GRACE_S = 60.0  # first chunk of a worker: the forkserver may still be importing SymPy
_MAX_START_FAILURES = 3
_MAX_HUNG_GOLDS = 10_000  # golds remembered as hanging the parser (forgotten all at once)
_RECHECK_S = 0.01  # poll interval while a worker has not yet started its chunk

Job = tuple[int, str, str | None]  # (job id, gold answer, predicted answer or None)


def _worker_entry(conn: Connection, status: Any, max_memory_mb: int | None) -> None:
    from lensrl.verify import _worker

    _worker.main(conn, status, max_memory_mb)


@dataclass
class _Worker:
    process: Any
    conn: Connection
    status: Any
    seq: int = -1
    jobs: list[Job] = field(default_factory=list)
    sent_at: float = 0.0
    fresh: bool = True

    def deadline(self, timeout: float) -> float:
        """When to kill this worker if it has not answered."""
        if self.status[_SEQ] == self.seq:
            return float(self.status[_START]) + timeout
        return self.sent_at + timeout + (_STARTUP_GRACE_S if self.fresh else 1.0)

    def next_check(self, timeout: float, now: float) -> float:
        """When to look again: its deadline, or soon if it has not picked up its chunk yet."""
        if self.status[_SEQ] == self.seq:
            return float(self.status[_START]) + timeout
        return min(now + _RECHECK_S, self.deadline(timeout))


class VerifierPool:
    """Long-lived verifier worker processes; reuse one across training steps.

    Args:
        workers: number of worker processes (default: the CPUs this process may use).
        timeout: default wall-clock limit in seconds for one pair (parse gold, parse prediction,
            compare); ``verify_batch(..., timeout=)`` overrides it per call.
        start_method: ``"forkserver"`` (default where available: workers fork from a clean,
            single-threaded server that has Math-Verify imported) or ``"spawn"``. ``"fork"`` is
            refused: forking a process that runs torch threads can deadlock.
        max_memory_mb: address space a worker may add to what it maps at start (``None``: no cap).
        chunk_size: pairs per message to a worker (default: about a quarter of a worker's share).

    Use as a context manager, or call :meth:`close`. Not for use from several threads at once
    (calls are serialised by a lock).
    """

    def __init__(
        self,
        workers: int | None = None,
        timeout: float = 5.0,
        *,
        start_method: str | None = None,
        max_memory_mb: int | None = 2048,
        chunk_size: int | None = None,
    ) -> None:
        if workers is None:
            workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        _check_timeout(timeout)
        methods = mp.get_all_start_methods()
        start_method = start_method or ("forkserver" if "forkserver" in methods else "spawn")
        if start_method not in ("forkserver", "spawn") or start_method not in methods:
            raise ValueError(f"start_method must be 'forkserver' or 'spawn', got {start_method!r}")
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.workers = workers
        self.timeout = timeout
        self.start_method = start_method
        self.max_memory_mb = max_memory_mb
        self.chunk_size = chunk_size
        self.stats = {"pairs": 0, "judged": 0, "timeouts": 0, "crashes": 0, "restarts": 0}
        self._ctx: Any = mp.get_context(start_method)
        self._lock = threading.Lock()
        self._pool: list[_Worker] = []
        self._pid = os.getpid()
        self._seq = 0
        self._hung_golds: dict[str, float] = {}  # gold answer -> timeout it hung under

    def __enter__(self) -> VerifierPool:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the workers now rather than on the first call."""
        with self._lock:
            self._ensure_workers()

    def close(self) -> None:
        """Stop the workers (politely, then by force)."""
        with self._lock:
            pool, self._pool = self._pool, []
            if os.getpid() != self._pid:
                return
            for w in pool:
                with contextlib.suppress(OSError):
                    w.conn.send(None)
            for w in pool:
                w.process.join(timeout=1.0)
                if w.process.is_alive():
                    w.process.kill()
                    w.process.join(timeout=1.0)
                w.conn.close()

    def verify(
        self, *, gold: str, prediction: str, strict: bool = False, timeout: float | None = None
    ) -> Verdict:
        """Judge one prediction against one gold answer (see :func:`lensrl.verify.verify`)."""
        return self.verify_batch([gold], [prediction], strict=strict, timeout=timeout)[0]

    def verify_batch(
        self,
        golds: Sequence[str],
        predictions: Sequence[str],
        *,
        strict: bool = False,
        timeout: float | None = None,
    ) -> list[Verdict]:
        """Judge ``predictions[i]`` against ``golds[i]`` for every i, in parallel."""
        if len(golds) != len(predictions):
            raise ValueError(f"{len(golds)} golds but {len(predictions)} predictions")
        limit = self.timeout if timeout is None else timeout
        _check_timeout(limit)
        out: list[Verdict | None] = [None] * len(golds)
        prepared: list[Prepared | None] = [None] * len(golds)
        pairs: dict[tuple[str, str | None], list[int]] = {}
        for i, (gold, pred) in enumerate(zip(golds, predictions)):
            ready = prepare(gold, pred, strict=strict)
            if isinstance(ready, Verdict):
                out[i] = ready
            else:
                prepared[i] = ready
                pairs.setdefault((ready.gold, ready.prediction), []).append(i)
        jobs = [(k, g, p) for k, (g, p) in enumerate(pairs)]
        with self._lock:
            results = self._run(jobs, limit) if jobs else {}
            self.stats["pairs"] += len(golds)
            self.stats["judged"] += len(jobs)
        for k, indices in enumerate(pairs.values()):
            correct, reason = results[k]
            for i in indices:
                prep = prepared[i]
                assert prep is not None
                out[i] = finish(prep, correct, reason)
        return [v if v is not None else Verdict(None, R.CRASHED) for v in out]

    # -- scheduling ---------------------------------------------------------------------------

    def _run(self, jobs: list[Job], timeout: float) -> dict[int, tuple[bool | None, str]]:
        self._ensure_workers()
        try:
            return self._schedule(jobs, timeout)
        except BaseException:
            # Interrupted (Ctrl-C, a start failure): busy workers hold stale chunks, drop them.
            for w in self._pool:
                if w.jobs:
                    w.process.kill()
                    w.process.join(timeout=5.0)
                    w.conn.close()
            self._pool = [w for w in self._pool if not w.jobs]
            raise

    def _schedule(self, jobs: list[Job], timeout: float) -> dict[int, tuple[bool | None, str]]:
        results: dict[int, tuple[bool | None, str]] = {}
        pending: deque[Job] = deque(sorted(jobs, key=lambda j: j[1]))  # same gold, same worker
        size = self.chunk_size or max(1, min(64, math.ceil(len(jobs) / (4 * self.workers))))
        failures = 0
        while True:
            for w in self._pool:
                if not w.jobs and pending:
                    self._send(w, pending, size, timeout, results)
            busy = [w for w in self._pool if w.jobs]
            if not busy:
                return results
            now = time.monotonic()
            first = min(w.next_check(timeout, now) for w in busy)
            for conn in wait([w.conn for w in busy], timeout=max(0.0, first - now)):
                self._receive(next(w for w in busy if w.conn is conn), pending, results)
            now = time.monotonic()
            for w in busy:
                if w.jobs and now >= w.deadline(timeout) and not w.conn.poll():
                    failures += self._fail(w, pending, results, R.TIMEOUT, timeout)
                    if failures >= _MAX_START_FAILURES:
                        raise RuntimeError("verifier workers do not start; see their stderr")

    def _send(
        self,
        w: _Worker,
        pending: deque[Job],
        size: int,
        timeout: float,
        results: dict[int, tuple[bool | None, str]],
    ) -> None:
        chunk: list[Job] = []
        while pending and len(chunk) < size:
            job = pending.popleft()
            if self._hung_golds.get(job[1], 0.0) >= timeout:
                results[job[0]] = (None, R.TIMEOUT)
            else:
                chunk.append(job)
        if chunk:
            self._seq += 1
            w.seq, w.jobs, w.sent_at = self._seq, chunk, time.monotonic()
            try:
                w.conn.send((w.seq, chunk))
            except OSError:  # the worker died while idle: replace it, re-queue the chunk
                self._fail(w, pending, results, R.CRASHED, None)

    def _receive(
        self, w: _Worker, pending: deque[Job], results: dict[int, tuple[bool | None, str]]
    ) -> None:
        try:
            seq, done = w.conn.recv()
        except (EOFError, OSError):
            self._fail(w, pending, results, R.CRASHED, None)
            return
        if seq == w.seq:
            for job_id, correct, reason in done:
                results[job_id] = (correct, reason)
            w.jobs, w.fresh = [], False

    def _fail(
        self,
        w: _Worker,
        pending: deque[Job],
        results: dict[int, tuple[bool | None, str]],
        reason: str,
        timeout: float | None,
    ) -> int:
        """Kill ``w``, give its running job ``reason``, re-queue the rest; 1 if it never started.

        With a ``timeout``, a worker that has just moved on to a new job is left alone.
        """
        started = w.status[_SEQ] == w.seq
        pos, on_gold = int(w.status[_POS]), w.status[_PHASE] == _PHASE_GOLD
        if timeout is not None and started and time.monotonic() < w.status[_START] + timeout:
            return 0
        w.process.kill()
        w.process.join(timeout=5.0)
        w.conn.close()
        jobs, w.jobs = w.jobs, []
        if started and 0 <= pos < len(jobs):
            job_id, gold, _ = jobs[pos]
            results[job_id] = (None if on_gold else False, reason)
            if on_gold and timeout is not None:
                if len(self._hung_golds) >= _MAX_HUNG_GOLDS:
                    self._hung_golds.clear()
                self._hung_golds[gold] = max(timeout, self._hung_golds.get(gold, 0.0))
            jobs = jobs[:pos] + jobs[pos + 1 :]
        pending.extendleft(reversed(jobs))
        self.stats["timeouts" if reason == R.TIMEOUT else "crashes"] += 1
        self._pool[self._pool.index(w)] = self._spawn()
        self.stats["restarts"] += 1
        return 0 if started else 1

    def _ensure_workers(self) -> None:
        if os.getpid() != self._pid:  # we are a forked child: those workers are the parent's
            self._pool, self._pid = [], os.getpid()
        self._pool = [w for w in self._pool if w.process.is_alive()]
        while len(self._pool) < self.workers:
            self._pool.append(self._spawn())

    def _spawn(self) -> _Worker:
        if self.start_method == "forkserver":
            self._ctx.set_forkserver_preload(["lensrl.verify._worker"])
        parent, child = self._ctx.Pipe(duplex=True)
        status = self._ctx.RawArray("d", _STATUS_SIZE)
        status[_SEQ] = -1.0
        process = self._ctx.Process(
            target=_worker_entry,
            args=(child, status, self.max_memory_mb),
            name="lensrl-verifier",
            daemon=True,
        )
        process.start()
        child.close()
        return _Worker(process, parent, status)


def _check_timeout(timeout: float) -> None:
    if not (isinstance(timeout, int | float) and math.isfinite(timeout) and timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")


_default: VerifierPool | None = None
_default_lock = threading.Lock()


def default_pool(workers: int | None = None) -> VerifierPool:
    """The shared pool behind :func:`verify` and :func:`verify_batch`, created on first use."""
    global _default
    with _default_lock:
        if _default is None or (workers is not None and workers != _default.workers):
            if _default is not None:
                _default.close()
            else:
                atexit.register(_close_default)
            _default = VerifierPool(workers=workers)
        return _default


def _close_default() -> None:
    if _default is not None:
        _default.close()


def verify(*, gold: str, prediction: str, timeout: float = 5.0, strict: bool = False) -> Verdict:
    """Judge ``prediction`` (a model completion) against ``gold`` (a reference answer).

    ``gold`` may be bare (``3\\sqrt{2}``), in ``$...$``, in ``\\boxed{}`` or end in ``#### 42``.
    The prediction's answer is its last ``\\boxed{}``; without ``strict`` the fallbacks of
    :mod:`lensrl.verify.extract` apply. ``correct is None`` means the gold cannot be judged.
    Returns within about ``timeout`` seconds (plus worker start-up on the very first call).
    """
    return default_pool().verify(gold=gold, prediction=prediction, strict=strict, timeout=timeout)


def verify_batch(
    golds: Sequence[str],
    predictions: Sequence[str],
    *,
    timeout: float = 5.0,
    workers: int | None = None,
    strict: bool = False,
) -> list[Verdict]:
    """:func:`verify` for many pairs at once, on the shared pool (``workers`` resizes it)."""
    return default_pool(workers).verify_batch(golds, predictions, strict=strict, timeout=timeout)
