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
and at most ``(1 + RETRY_FACTOR × RETRY_ROUNDS) × timeout`` on a loaded one. ``stats["retried"]`` counts the retries, ``stats["timeout_verdicts"]`` the pairs that got a
``"timeout"`` verdict. No thread is used: one ``multiprocessing.connection.wait`` loop drives all workers.

Workers are forked by a server process started as ``python -m lensrl.verify._worker`` (never by
``multiprocessing``), so the caller's ``__main__`` is never imported again: a script without a
main guard, a script piped to ``python -``, ``python -c``, a notebook, or a daemonic process (where
``multiprocessing`` may not start children) all work alike. See ``docs/verifier.md`` §5.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import mmap
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait

from lensrl.verify import verdict as R
from lensrl.verify.prepare import Prepared, finish, prepare
from lensrl.verify.verdict import Verdict

# Mirrors lensrl.verify._worker, which the caller must not import (it loads Math-Verify).
_SEQ, _POS, _PHASE, _START, _STATUS_SIZE = 0, 1, 2, 3, 4
_PHASE_GOLD = 0.0
_REQUEST = struct.Struct("<q")
_SERVER_START_S = 60.0  # first worker: the server imports SymPy and Math-Verify and warms up
_STARTUP_GRACE_S = 10.0  # first chunk of a freshly forked worker, on a loaded machine
_MAX_START_FAILURES = 3
_MAX_HUNG_GOLDS = 10_000  # golds remembered as hanging the parser (forgotten all at once)
_RECHECK_S = 0.01  # poll interval while a worker has not yet started its chunk
_LOG_TAIL = 2000  # characters of the server's stderr quoted in a VerifierError
# A timed-out pair whose worker got less than this share of a CPU (it was starved by other work)
# is judged again, alone, with RETRY_FACTOR times the limit before it counts as a timeout.
STARVED_SHARE = 0.5
RETRY_FACTOR = 4.0
# Rounds of that retry while the worker stays starved (a test beside 2 CPU hogs a core saw one
# pair starved twice); the last round's timeout counts, so a hostile pair on a loaded machine
# costs at most about (1 + RETRY_FACTOR * RETRY_ROUNDS) times the limit.
RETRY_ROUNDS = 3

Job = tuple[int, str, str | None]  # (job id, gold answer, predicted answer or None)


class VerifierError(RuntimeError):
    """The verifier's processes cannot do their work: they do not start, or break the protocol.

    The message names the cause (and quotes the worker server's stderr where there is one). It is
    raised within a bounded time, never instead of a verdict for hostile input: a hostile answer
    gets a ``"timeout"`` or ``"verifier crashed"`` verdict and the pool carries on.
    """


def _server_command(control_fd: int) -> list[str]:
    """``python -P -m lensrl.verify._worker FD``: a fresh interpreter, not the caller's script.

    ``-P`` keeps the current directory off ``sys.path`` (a stray ``sympy.py`` there must not be
    imported); the caller's ``sys.path`` goes in ``PYTHONPATH`` instead (see :func:`_server_env`).
    """
    if not sys.executable:
        raise VerifierError("cannot start verifier workers: sys.executable is empty")
    return [sys.executable, "-P", "-m", "lensrl.verify._worker", str(control_fd)]


def _server_env() -> dict[str, str]:
    """The caller's environment with its ``sys.path`` as ``PYTHONPATH``, so that the server finds
    ``lensrl`` wherever the caller did (an uninstalled checkout, a notebook's path tweaks)."""
    env = dict(os.environ)
    paths = [p for p in sys.path if p and os.path.isdir(p)]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


class _Server:
    """The process that forks workers (``lensrl.verify._worker.serve``) and its control socket."""

    def __init__(self) -> None:
        # output of the server and its workers, quoted when they fail; closed in close()
        self.log = tempfile.TemporaryFile()  # noqa: SIM115
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.command = _server_command(theirs.fileno())
        try:
            self.process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=self.log,  # not the caller's stdout: a pipe a caller reads to its end
                stderr=self.log,
                pass_fds=(theirs.fileno(),),
                env=_server_env(),
                close_fds=True,
            )
        except OSError as exc:
            mine.close()
            self.log.close()
            raise VerifierError(f"cannot start the verifier server: {exc}") from exc
        finally:
            theirs.close()
        self.control = mine
        self.started = False  # True once it has forked one worker

    def stderr_tail(self) -> str:
        with contextlib.suppress(OSError, ValueError):
            self.log.seek(0, os.SEEK_END)
            size = self.log.tell()
            self.log.seek(max(0, size - _LOG_TAIL))
            return self.log.read().decode(errors="replace").strip()
        return ""

    def _failure(self, what: str) -> VerifierError:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=1.0)
        code = self.process.poll()
        state = "is still running" if code is None else f"exited with code {code}"
        tail = self.stderr_tail()
        return VerifierError(
            f"verifier server ({' '.join(map(str, self.command))}) {what}; it {state}"
            + (f"; its stderr ends with:\n{tail}" if tail else "; its stderr is empty")
        )

    def fork_worker(self, conn_fd: int, status_fd: int, max_memory_mb: int | None) -> int:
        """Ask the server for a worker on these descriptors; its pid."""
        limit = _SERVER_START_S if not self.started else _STARTUP_GRACE_S
        try:
            socket.send_fds(
                self.control, [_REQUEST.pack(-1 if max_memory_mb is None else max_memory_mb)],
                [conn_fd, status_fd],
            )
            data = b""
            deadline = time.monotonic() + limit
            while len(data) < _REQUEST.size:
                self.control.settimeout(max(0.001, deadline - time.monotonic()))
                more = self.control.recv(_REQUEST.size - len(data))
                if not more:
                    raise self._failure("closed its control socket before starting a worker")
                data += more
        except TimeoutError:
            self.close()
            raise self._failure(f"did not start a worker within {limit:g} s") from None
        except OSError as exc:
            raise self._failure(f"cannot be reached ({exc})") from exc
        self.started = True
        (pid,) = _REQUEST.unpack(data)
        if pid <= 0:
            raise self._failure(f"answered with an invalid pid {pid}")
        return int(pid)

    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        self.control.close()  # end of file: the server exits
        try:
            self.process.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5.0)
        self.log.close()


@dataclass
class _Worker:
    pid: int
    conn: Connection
    status: mmap.mmap
    seq: int = -1
    jobs: list[Job] = field(default_factory=list)
    sent_at: float = 0.0
    cpu_at_send: float | None = None  # the worker's CPU seconds when its chunk was sent
    fresh: bool = True

    def starved(self) -> bool:
        """Whether it got less than STARVED_SHARE of a CPU since its chunk was sent (unknown
        without /proc: assumed starved, so that a pair is retried rather than misjudged)."""
        cpu = _cpu_seconds(self.pid)
        if cpu is None or self.cpu_at_send is None:
            return True
        wall = time.monotonic() - self.sent_at
        return cpu - self.cpu_at_send < STARVED_SHARE * wall

    def get(self, index: int) -> float:
        return float(struct.unpack_from("<d", self.status, 8 * index)[0])

    def deadline(self, timeout: float) -> float:
        """When to kill this worker if it has not answered."""
        if self.get(_SEQ) == self.seq:
            return self.get(_START) + timeout
        return self.sent_at + timeout + (_STARTUP_GRACE_S if self.fresh else 1.0)

    def next_check(self, timeout: float, now: float) -> float:
        """When to look again: its deadline, or soon if it has not picked up its chunk yet."""
        if self.get(_SEQ) == self.seq:
            return self.get(_START) + timeout
        return min(now + _RECHECK_S, self.deadline(timeout))

    def alive(self) -> bool:
        """Whether an idle worker still runs: its socket is not at end of file. (An idle worker
        never writes, and no other process holds its end, so readable means it exited. This
        never signals a pid, which could by now name another process.)"""
        try:
            return not self.conn.closed and not self.conn.poll()
        except OSError:
            return False

    def discard(self) -> None:
        """Forget a worker that has exited."""
        self.conn.close()
        self.status.close()

    def kill(self) -> None:
        """SIGKILL a worker that is running (busy, hung, or not stopping when asked)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.pid, signal.SIGKILL)
        self.discard()


def _decode(raw: bytes, w: _Worker) -> dict[int, tuple[bool | None, str]]:
    """A worker's answer to its chunk, checked; a :class:`VerifierError` if it is malformed."""
    try:
        seq, done = json.loads(raw)
        got = {int(k): (c, str(r)) for k, c, r in done if c is None or isinstance(c, bool)}
        if seq != w.seq or len(got) != len(done) or set(got) != {j[0] for j in w.jobs}:
            raise ValueError(f"chunk {seq} with {len(done)} results for chunk {w.seq} of "
                             f"{len(w.jobs)} jobs")
    except (ValueError, TypeError) as exc:
        raise VerifierError(f"protocol error: worker {w.pid} sent {raw[:200]!r} ({exc})") from None
    return got


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
        self._server: _Server | None = None
        self._pool: list[_Worker] = []
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
        jobs = [(k, g, p) for k, (g, p) in enumerate(pairs)]
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

    def _run(self, jobs: list[Job], timeout: float) -> dict[int, tuple[bool | None, str]]:
        try:
            self._ensure_workers()
            self._starved, self._final = set(), False
            results = self._schedule(jobs, timeout)
            again = [j for j in jobs if j[0] in self._starved]
            for round_ in range(1, RETRY_ROUNDS + 1):  # alone, with a longer limit, while the
                if not again:  # worker is starved: a loaded machine is no verdict
                    break
                self.stats["retried"] += len(again)
                self._starved, self._final = set(), round_ == RETRY_ROUNDS
                results.update(self._schedule(again, timeout * RETRY_FACTOR, size=1))
                again = [j for j in again if j[0] in self._starved]
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
    ) -> dict[int, tuple[bool | None, str]]:
        results: dict[int, tuple[bool | None, str]] = {}
        pending: deque[Job] = deque(sorted(jobs, key=lambda j: j[1]))  # same gold, same worker
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
                            f"first chunk within {timeout + _STARTUP_GRACE_S:g} s"
                            + (f"; the server's stderr ends with:\n{tail}" if tail else "")
                        )

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
            w.cpu_at_send = _cpu_seconds(w.pid)
            try:
                w.conn.send_bytes(json.dumps([w.seq, chunk]).encode())
            except OSError:  # the worker died while idle: replace it, re-queue the chunk
                self._fail(w, pending, results, R.CRASHED, None)

    def _receive(
        self, w: _Worker, pending: deque[Job], results: dict[int, tuple[bool | None, str]]
    ) -> None:
        try:
            raw = w.conn.recv_bytes()
        except (EOFError, OSError):
            self._fail(w, pending, results, R.CRASHED, None)
            return
        results.update(_decode(raw, w))
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
        started = w.get(_SEQ) == w.seq
        pos, on_gold = int(w.get(_POS)), w.get(_PHASE) == _PHASE_GOLD
        if timeout is not None and started and time.monotonic() < w.get(_START) + timeout:
            return 0
        starved = reason == R.TIMEOUT and not self._final and w.starved()  # before the kill
        if reason == R.CRASHED:  # its socket broke: it has exited already
            w.discard()
        else:
            w.kill()
        jobs, w.jobs = w.jobs, []
        if started and 0 <= pos < len(jobs):
            job_id, gold, _ = jobs[pos]
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

    def _spawn(self) -> _Worker:
        if self._server is not None and not self._server.alive():
            self._server.close()  # killed from outside: start another
            self._server = None
        if self._server is None:
            self._server = _Server()
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        status_fd = _status_fd()
        try:
            os.ftruncate(status_fd, 8 * _STATUS_SIZE)
            status = mmap.mmap(status_fd, 8 * _STATUS_SIZE)
            struct.pack_into("<d", status, 8 * _SEQ, -1.0)
            pid = self._server.fork_worker(theirs.fileno(), status_fd, self.max_memory_mb)
        except BaseException:
            mine.close()
            raise
        finally:
            theirs.close()
            os.close(status_fd)
        return _Worker(pid, Connection(mine.detach()), status)


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` (Linux ``/proc``), or None if unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        fields = stat[stat.rindex(b")") + 2 :].split()  # after "pid (comm) "
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime
    except (OSError, ValueError, IndexError):
        return None


def _status_fd() -> int:
    """A file descriptor of shared memory for one worker's status (anonymous where possible)."""
    if hasattr(os, "memfd_create"):
        return os.memfd_create("lensrl-verifier-status")
    fd, path = tempfile.mkstemp(prefix="lensrl-verifier-")
    os.unlink(path)
    return fd


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
