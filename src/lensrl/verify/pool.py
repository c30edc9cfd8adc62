"""A pool of verifier processes with a wall-clock limit per pair, and the public entry points.

The calling process extracts answers (cheap string work, :mod:`lensrl.verify.extract`), rejects
oversized or malformed ones, de-duplicates identical pairs, and sends the rest in chunks to worker
processes that run Math-Verify (:mod:`lensrl.verify._worker`). A pair that runs past ``timeout``
has its worker killed and replaced and the rest of its chunk is re-queued. A pair that ran out of
time while its worker got less than half a CPU (:data:`STARVED_SHARE`; a machine loaded by other
work stretches a pair that takes milliseconds to seconds of wall-clock time) is judged again,
alone, with :data:`RETRY_FACTOR` times the limit, up to :data:`RETRY_ROUNDS` times while its worker
stays starved, and only then counts as a ``"timeout"``: without the retry, a reward (and everything
trained from it) would depend on the machine's load. A pair that used its whole limit on a CPU of
its own is a timeout at once, so hostile input costs about ``timeout`` per pair on an idle machine
and at most ``(1 + RETRY_FACTOR × RETRY_ROUNDS) × timeout`` on a loaded one. ``stats["retried"]``
counts the retries, ``stats["timeout_verdicts"]`` the pairs that got a ``"timeout"`` verdict. No
thread is used: one ``multiprocessing.connection.wait`` loop drives all workers.

Workers are forked by a server process started as ``python -m lensrl.verify._worker`` (never by
``multiprocessing``), so the caller's ``__main__`` is never imported again: a script without a
main guard, a script piped to ``python -``, ``python -c``, a notebook, or a daemonic process (where
``multiprocessing`` may not start children) all work alike. See ``docs/verifier.md`` §5. The
server, the caller's handle on each worker and the wire protocol are in :mod:`lensrl.verify._ipc`.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import threading
import time
from collections import deque
from collections.abc import Sequence
from multiprocessing.connection import wait

from lensrl.verify import verdict as R
from lensrl.verify._ipc import (
    PHASE,
    PHASE_GOLD,
    POS,
    START,
    STARTUP_GRACE_S,
    Job,
    Result,
    Server,
    VerifierError,
    Worker,
)
from lensrl.verify.prepare import Prepared, finish, prepare
from lensrl.verify.verdict import Verdict

_MAX_START_FAILURES = 3
_MAX_HUNG_GOLDS = 10_000  # golds remembered as hanging the parser (forgotten all at once)
# A timed-out pair whose worker got less than this share of a CPU (it was starved by other work)
# is judged again, alone, with RETRY_FACTOR times the limit before it counts as a timeout.
STARVED_SHARE = 0.5
RETRY_FACTOR = 4.0
# Rounds of that retry while the worker stays starved (a test beside 2 CPU hogs a core saw one
# pair starved twice); the last round's timeout counts, so a hostile pair on a loaded machine
# costs at most about (1 + RETRY_FACTOR * RETRY_ROUNDS) times the limit.
RETRY_ROUNDS = 3


class VerifierPool:
    """Long-lived verifier worker processes; reuse one across training steps.

    Args:
        workers: number of worker processes (default: the CPUs this process may use).
        timeout: default wall-clock limit in seconds for one pair (parse gold, parse prediction,
            compare); ``verify_batch(..., timeout=)`` overrides it per call.
        strict: default extraction mode of :meth:`verify` / :meth:`verify_batch` calls that do not
            pass ``strict`` (``True``: only the last ``\\boxed{}``; see ``docs/verifier.md`` §2).
        max_memory_mb: address space a worker may add to what it maps at start (``None``: no cap).
        chunk_size: pairs per message to a worker (default: about a quarter of a worker's share).

    Workers are forked by one server process, ``python -m lensrl.verify._worker`` (see that
    module for why not ``multiprocessing``). Needs a POSIX system. Use as a context manager, or
    call :meth:`close`. Calls from several threads are serialised by a lock. Raises
    :class:`VerifierError` when the workers cannot be started.
    """

    def __init__(
        self,
        workers: int | None = None,
        timeout: float = 5.0,
        *,
        strict: bool = False,
        max_memory_mb: int | None = 2048,
        chunk_size: int | None = None,
    ) -> None:
        if workers is None:
            workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        _check_timeout(timeout)
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        if max_memory_mb is not None and max_memory_mb < 1:
            raise ValueError(f"max_memory_mb must be >= 1 or None, got {max_memory_mb}")
        if not isinstance(strict, bool):
            raise TypeError(f"strict must be a bool, got {strict!r}")
        self.workers = workers
        self.timeout = timeout
        self.strict = strict
        self.max_memory_mb = max_memory_mb
        self.chunk_size = chunk_size
        # timeouts: workers killed for time; retried: pairs of a starved worker judged again with
        # RETRY_FACTOR × the limit; timeout_verdicts: pairs whose verdict is "timeout"
        self.stats = {"pairs": 0, "judged": 0, "timeouts": 0, "crashes": 0, "restarts": 0,
                      "retried": 0, "timeout_verdicts": 0}
        self._lock = threading.Lock()
        self._server: Server | None = None
        self._pool: list[Worker] = []
        self._pid = os.getpid()
        self._seq = 0
        self._hung_golds: dict[str, float] = {}  # gold answer -> timeout it hung under
        self._starved: set[int] = set()  # jobs of this call timed out on a starved worker
        self._final = False  # this call's retry pass: a timeout is final

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
        """Stop the workers (politely, then by force) and their server."""
        with self._lock:
            pool, self._pool = self._pool, []
            server, self._server = self._server, None
            if os.getpid() != self._pid:
                return
            for w in pool:
                with contextlib.suppress(OSError):
                    w.conn.send_bytes(b"null")
            deadline = time.monotonic() + 1.0
            for w in pool:
                if wait([w.conn], timeout=max(0.0, deadline - time.monotonic())):
                    w.discard()  # end of file: it has exited
                else:
                    w.kill()
            if server is not None:
                server.close()

    def verify(
        self,
        *,
        gold: str,
        prediction: str,
        strict: bool | None = None,
        timeout: float | None = None,
    ) -> Verdict:
        """Judge one prediction against one gold answer (see :func:`lensrl.verify.verify`)."""
        return self.verify_batch([gold], [prediction], strict=strict, timeout=timeout)[0]

    def verify_batch(
        self,
        golds: Sequence[str],
        predictions: Sequence[str],
        *,
        strict: bool | None = None,
        timeout: float | None = None,
    ) -> list[Verdict]:
        """Judge ``predictions[i]`` against ``golds[i]`` for every i, in parallel.

        ``strict`` and ``timeout`` default to the pool's.
        """
        if len(golds) != len(predictions):
            raise ValueError(f"{len(golds)} golds but {len(predictions)} predictions")
        limit = self.timeout if timeout is None else timeout
        _check_timeout(limit)
        mode = self.strict if strict is None else strict
        out: list[Verdict | None] = [None] * len(golds)
        prepared: list[Prepared | None] = [None] * len(golds)
        pairs: dict[tuple[str, str | None], list[int]] = {}
        for i, (gold, pred) in enumerate(zip(golds, predictions)):
            ready = prepare(gold, pred, strict=mode)
            if isinstance(ready, Verdict):
                out[i] = ready
            else:
                prepared[i] = ready
                pairs.setdefault((ready.gold, ready.prediction), []).append(i)
        jobs = [Job(k, g, p) for k, (g, p) in enumerate(pairs)]
        with self._lock:
            results = self._run(jobs, limit) if jobs else {}
            self.stats["pairs"] += len(golds)
            self.stats["judged"] += len(jobs)
        for k, indices in enumerate(pairs.values()):
            if k not in results:  # _schedule answers every job or raises; guard all the same
                raise VerifierError(f"internal error: no verdict for pair {k} of {len(jobs)}")
            correct, reason = results[k]
            for i in indices:
                prep = prepared[i]
                assert prep is not None
                out[i] = finish(prep, correct, reason)
        return [v if v is not None else Verdict(None, R.CRASHED) for v in out]

    # -- scheduling ---------------------------------------------------------------------------

    def _run(self, jobs: list[Job], timeout: float) -> dict[int, Result]:
        try:
            self._ensure_workers()
            self._starved, self._final = set(), False
            results = self._schedule(jobs, timeout)
            again = [j for j in jobs if j.id in self._starved]
            for round_ in range(1, RETRY_ROUNDS + 1):  # alone, with a longer limit, while the
                if not again:  # worker is starved: a loaded machine is no verdict
                    break
                self.stats["retried"] += len(again)
                self._starved, self._final = set(), round_ == RETRY_ROUNDS
                results.update(self._schedule(again, timeout * RETRY_FACTOR, size=1))
                again = [j for j in again if j.id in self._starved]
            self.stats["timeout_verdicts"] += sum(r[1] == R.TIMEOUT for r in results.values())
            return results
        except BaseException:
            # Interrupted (Ctrl-C, a start failure, a protocol error): busy workers hold stale
            # chunks, drop them.
            for w in self._pool:
                if w.jobs:
                    w.kill()
            self._pool = [w for w in self._pool if not w.jobs]
            raise

    def _schedule(
        self, jobs: list[Job], timeout: float, size: int | None = None
    ) -> dict[int, Result]:
        results: dict[int, Result] = {}
        pending: deque[Job] = deque(sorted(jobs, key=lambda j: j.gold))  # same gold, same worker
        size = size or self.chunk_size or max(1, min(64, math.ceil(len(jobs) / (4 * self.workers))))
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
                        tail = self._server.stderr_tail() if self._server else ""
                        raise VerifierError(
                            f"{failures} verifier workers were started but never began their "
                            f"first chunk within {timeout + STARTUP_GRACE_S:g} s"
                            + (f"; the server's stderr ends with:\n{tail}" if tail else "")
                        )

    def _send(
        self,
        w: Worker,
        pending: deque[Job],
        size: int,
        timeout: float,
        results: dict[int, Result],
    ) -> None:
        chunk: list[Job] = []
        while pending and len(chunk) < size:
            job = pending.popleft()
            if self._hung_golds.get(job.gold, 0.0) >= timeout:
                results[job.id] = (None, R.TIMEOUT)
            else:
                chunk.append(job)
        if chunk:
            self._seq += 1
            try:
                w.send(self._seq, chunk)
            except OSError:  # the worker died while idle: replace it, re-queue the chunk
                self._fail(w, pending, results, R.CRASHED, None)

    def _receive(
        self, w: Worker, pending: deque[Job], results: dict[int, Result]
    ) -> None:
        try:
            raw = w.conn.recv_bytes()
        except (EOFError, OSError):
            self._fail(w, pending, results, R.CRASHED, None)
            return
        results.update(w.decode(raw))
        w.jobs, w.fresh = [], False

    def _fail(
        self,
        w: Worker,
        pending: deque[Job],
        results: dict[int, Result],
        reason: str,
        timeout: float | None,
    ) -> int:
        """Kill ``w``, give its running job ``reason``, re-queue the rest; 1 if it never started.

        With a ``timeout``, a worker that has just moved on to a new job is left alone.
        """
        started = w.started()
        pos, on_gold = int(w.get(POS)), w.get(PHASE) == PHASE_GOLD
        if timeout is not None and started and time.monotonic() < w.get(START) + timeout:
            return 0
        starved = reason == R.TIMEOUT and not self._final and w.starved(STARVED_SHARE)  # before the kill
        if reason == R.CRASHED:  # its socket broke: it has exited already
            w.discard()
        else:
            w.kill()
        jobs, w.jobs = w.jobs, []
        if started and 0 <= pos < len(jobs):
            job_id, gold = jobs[pos].id, jobs[pos].gold
            results[job_id] = (None if on_gold else False, reason)
            if starved:
                self._starved.add(job_id)  # judged again (_run); a starved hang proves nothing
            elif on_gold and timeout is not None:
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
        if os.getpid() != self._pid:  # a forked child: the server and workers are the parent's
            for w in self._pool:
                w.conn.close()
            if self._server is not None:
                self._server.control.close()
            self._pool, self._server, self._pid = [], None, os.getpid()
        for w in [w for w in self._pool if not w.alive()]:
            w.discard()
            self._pool.remove(w)
        while len(self._pool) < self.workers:
            self._pool.append(self._spawn())

    def _spawn(self) -> Worker:
        if self._server is not None and not self._server.alive():
            self._server.close()  # killed from outside: start another
            self._server = None
        if self._server is None:
            self._server = Server()
        return self._server.spawn(self.max_memory_mb)


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
    Raises :class:`VerifierError` if the worker processes cannot be started.
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
