"""The verifier's processes and the wire protocol between the pool and its workers.

Imported by both sides: the pool in the calling process (:mod:`lensrl.verify.pool`) and the
worker server (:mod:`lensrl.verify._worker`). It imports neither Math-Verify nor SymPy, so the
caller never loads them.

Two channels, both created by the caller:

* **control** (a Unix stream socket, fd number in ``argv``): the caller sends 8 bytes
  (:data:`REQUEST`: the memory cap in MiB, or -1) with two file descriptors attached (the
  worker's connection and its status memory); the server forks, closes its copies and answers
  with the worker's pid (8 bytes). End of file on it means the caller is gone: the server exits.
* **per worker** (a Unix socket with ``multiprocessing.connection`` framing, JSON payloads):
  caller -> worker ``[seq, [[job_id, gold, prediction], ...]]`` or ``null`` to stop;
  worker -> caller ``[seq, [[job_id, correct, reason], ...]]`` once the whole chunk is done.

While it works, a worker writes ``(seq, position in chunk, phase, start time)`` as four doubles
into its status memory (a shared :data:`STATUS_BYTES` mapping). The caller never waits past the
current job's deadline: when it expires it reads the status, kills the worker and knows which
job hung and whether the gold or the prediction was being parsed. One message each way per chunk
keeps the IPC cost to tens of microseconds for tens of pairs.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import NamedTuple

# The status memory: four doubles, indexed by these.
SEQ, POS, PHASE, START = 0, 1, 2, 3
STATUS_SIZE = 4
STATUS_BYTES = 8 * STATUS_SIZE
PHASE_GOLD, PHASE_PREDICTION = 0.0, 1.0
REQUEST = struct.Struct("<q")  # control messages: the memory cap (request), the pid (answer)

SERVER_START_S = 60.0  # first worker: the server imports SymPy and Math-Verify and warms up
STARTUP_GRACE_S = 10.0  # first chunk of a freshly forked worker, on a loaded machine
_RECHECK_S = 0.01  # poll interval while a worker has not yet started its chunk
_LOG_TAIL = 2000  # characters of the server's stderr quoted in a VerifierError


class Job(NamedTuple):
    """One pair to judge, as it travels to a worker (a JSON array of three)."""

    id: int
    gold: str
    prediction: str | None


Result = tuple[bool | None, str]  # (correct, reason) of one job


class VerifierError(RuntimeError):
    """The verifier's processes cannot do their work: they do not start, or break the protocol.

    The message names the cause (and quotes the worker server's stderr where there is one). It is
    raised within a bounded time, never instead of a verdict for hostile input: a hostile answer
    gets a ``"timeout"`` or ``"verifier crashed"`` verdict and the pool carries on.
    """


def read_status(status: mmap.mmap, index: int) -> float:
    return float(struct.unpack_from("<d", status, 8 * index)[0])


def write_status(status: mmap.mmap, index: int, value: float) -> None:
    struct.pack_into("<d", status, 8 * index, value)


def server_command(control_fd: int) -> list[str]:
    """``python -P -m lensrl.verify._worker FD``: a fresh interpreter, not the caller's script.

    ``-P`` keeps the current directory off ``sys.path`` (a stray ``sympy.py`` there must not be
    imported); the caller's ``sys.path`` goes in ``PYTHONPATH`` instead (see :func:`server_env`).
    """
    if not sys.executable:
        raise VerifierError("cannot start verifier workers: sys.executable is empty")
    return [sys.executable, "-P", "-m", "lensrl.verify._worker", str(control_fd)]


def server_env() -> dict[str, str]:
    """The caller's environment with its ``sys.path`` as ``PYTHONPATH``, so that the server finds
    ``lensrl`` wherever the caller did (an uninstalled checkout, a notebook's path tweaks)."""
    env = dict(os.environ)
    paths = [p for p in sys.path if p and os.path.isdir(p)]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def status_fd() -> int:
    """A file descriptor of shared memory for one worker's status (anonymous where possible)."""
    if hasattr(os, "memfd_create"):
        return os.memfd_create("lensrl-verifier-status")
    fd, path = tempfile.mkstemp(prefix="lensrl-verifier-")
    os.unlink(path)
    return fd


class Server:
    """The process that forks workers (``lensrl.verify._worker.serve``) and its control socket."""

    def __init__(self) -> None:
        # output of the server and its workers, quoted when they fail; closed in close()
        self.log = tempfile.TemporaryFile()  # noqa: SIM115
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.command = server_command(theirs.fileno())
        try:
            self.process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=self.log,  # not the caller's stdout: a pipe a caller reads to its end
                stderr=self.log,
                pass_fds=(theirs.fileno(),),
                env=server_env(),
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
        limit = SERVER_START_S if not self.started else STARTUP_GRACE_S
        try:
            socket.send_fds(
                self.control, [REQUEST.pack(-1 if max_memory_mb is None else max_memory_mb)],
                [conn_fd, status_fd],
            )
            data = b""
            deadline = time.monotonic() + limit
            while len(data) < REQUEST.size:
                self.control.settimeout(max(0.001, deadline - time.monotonic()))
                more = self.control.recv(REQUEST.size - len(data))
                if not more:
                    raise self._failure("closed its control socket before starting a worker")
                data += more
        except TimeoutError:
            self.close()
            raise self._failure(f"did not start a worker within {limit:g} s") from None
        except OSError as exc:
            raise self._failure(f"cannot be reached ({exc})") from exc
        self.started = True
        (pid,) = REQUEST.unpack(data)
        if pid <= 0:
            raise self._failure(f"answered with an invalid pid {pid}")
        return int(pid)

    def spawn(self, max_memory_mb: int | None) -> Worker:
        """A new worker: its socket and status memory are made here, its process by the server."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        fd = status_fd()
        try:
            os.ftruncate(fd, STATUS_BYTES)
            status = mmap.mmap(fd, STATUS_BYTES)
            write_status(status, SEQ, -1.0)
            pid = self.fork_worker(theirs.fileno(), fd, max_memory_mb)
        except BaseException:
            mine.close()
            raise
        finally:
            theirs.close()
            os.close(fd)
        return Worker(pid, Connection(mine.detach()), status)

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
class Worker:
    """The caller's handle on one worker process: its socket, status memory and current chunk."""

    pid: int
    conn: Connection
    status: mmap.mmap
    seq: int = -1
    jobs: list[Job] = field(default_factory=list)
    sent_at: float = 0.0
    cpu_at_send: float | None = None  # the worker's CPU seconds when its chunk was sent
    fresh: bool = True

    def send(self, seq: int, chunk: list[Job]) -> None:
        """Hand it ``chunk`` as chunk ``seq``; OSError if it has died."""
        self.seq, self.jobs, self.sent_at = seq, chunk, time.monotonic()
        self.cpu_at_send = cpu_seconds(self.pid)
        self.conn.send_bytes(json.dumps([seq, chunk]).encode())

    def decode(self, raw: bytes) -> dict[int, Result]:
        """Its answer to its chunk, checked; a :class:`VerifierError` if it is malformed."""
        try:
            seq, done = json.loads(raw)
            got = {int(k): (c, str(r)) for k, c, r in done if c is None or isinstance(c, bool)}
            if seq != self.seq or len(got) != len(done) or set(got) != {j.id for j in self.jobs}:
                raise ValueError(f"chunk {seq} with {len(done)} results for chunk {self.seq} of "
                                 f"{len(self.jobs)} jobs")
        except (ValueError, TypeError) as exc:
            raise VerifierError(
                f"protocol error: worker {self.pid} sent {raw[:200]!r} ({exc})"
            ) from None
        return got

    def starved(self, share: float) -> bool:
        """Whether it got less than ``share`` of a CPU since its chunk was sent (unknown without
        ``/proc``: assumed starved, so that a pair is retried rather than misjudged)."""
        cpu = cpu_seconds(self.pid)
        if cpu is None or self.cpu_at_send is None:
            return True
        wall = time.monotonic() - self.sent_at
        return cpu - self.cpu_at_send < share * wall

    def get(self, index: int) -> float:
        return read_status(self.status, index)

    def started(self) -> bool:
        """Whether it has begun its current chunk (its status shows that chunk's number)."""
        return self.get(SEQ) == self.seq

    def deadline(self, timeout: float) -> float:
        """When to kill this worker if it has not answered."""
        if self.started():
            return self.get(START) + timeout
        return self.sent_at + timeout + (STARTUP_GRACE_S if self.fresh else 1.0)

    def next_check(self, timeout: float, now: float) -> float:
        """When to look again: its deadline, or soon if it has not picked up its chunk yet."""
        if self.started():
            return self.get(START) + timeout
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


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` (Linux ``/proc``), or None if unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        fields = stat[stat.rindex(b")") + 2 :].split()  # after "pid (comm) "
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime
    except (OSError, ValueError, IndexError):
        return None
