"""The verifier's worker processes, started as ``python -m lensrl.verify._worker``.

Why a module run with ``-m`` rather than ``multiprocessing``: multiprocessing's ``spawn`` and
``forkserver`` re-import the caller's ``__main__`` in every worker, so a script without an
``if __name__ == "__main__":`` guard ran its own top level once per worker (and again for every
replacement of a killed one), and a script read from stdin could not be re-imported at all. Here
the caller starts one fresh interpreter on this module (:func:`serve`); it imports Math-Verify,
warms the parser caches once, then forks a worker for each request. Nothing of the caller's code
is ever imported, and a replacement worker is a cheap fork of a warm single-threaded process.

The channels to the caller and the protocol on them are described in :mod:`lensrl.verify._ipc`.

This module imports Math-Verify; the caller (``lensrl.verify.pool``) never imports it.
"""

from __future__ import annotations

import json
import mmap
import os
import signal
import socket
import sys
import time
from multiprocessing.connection import Connection

from lensrl.verify import _judge
from lensrl.verify._ipc import (
    PHASE,
    PHASE_GOLD,
    PHASE_PREDICTION,
    POS,
    REQUEST,
    SEQ,
    START,
    STATUS_BYTES,
    read_status,
    write_status,
)


def _limit_memory(max_memory_mb: int | None) -> None:
    """Cap the address space a little above what the worker already maps, where supported."""
    if max_memory_mb is None:
        return
    try:
        import resource

        with open("/proc/self/statm") as f:
            mapped = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        limit = mapped + max_memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, OSError, ValueError):
        pass


def work(conn_fd: int, status_fd: int, max_memory_mb: int | None) -> None:
    """Serve chunks on ``conn_fd`` until the caller sends ``null`` or goes away."""
    _limit_memory(max_memory_mb)
    status = mmap.mmap(status_fd, STATUS_BYTES)
    os.close(status_fd)
    conn = Connection(conn_fd)

    def put(index: int, value: float) -> None:
        write_status(status, index, value)

    while True:
        try:
            msg = json.loads(conn.recv_bytes())
        except (EOFError, OSError, ValueError):
            return
        if msg is None:
            return
        seq, jobs = msg
        results = []
        for pos, (job_id, gold, pred) in enumerate(jobs):
            # START before POS before SEQ: a reader that sees the new position sees its time.
            put(START, time.monotonic())
            put(PHASE, PHASE_GOLD)
            put(POS, pos)
            put(SEQ, seq)
            try:
                correct, reason = _judge.judge(gold, pred, lambda: put(PHASE, PHASE_PREDICTION))
            except Exception:
                gold_phase = read_status(status, PHASE) == PHASE_GOLD
                correct, reason = (None if gold_phase else False), "verifier crashed"
            results.append([job_id, correct, reason])
        try:
            conn.send_bytes(json.dumps([seq, results]).encode())
        except OSError:
            return


def _recv_exact(sock: socket.socket, size: int) -> tuple[bytes, list[int]]:
    data, fds, _, _ = socket.recv_fds(sock, size, 2)
    while data and len(data) < size:  # a stream socket may split even 8 bytes
        more = sock.recv(size - len(data))
        if not more:
            return b"", fds
        data += more
    return data, fds


def serve(control_fd: int) -> None:
    """Fork a worker for each request on the control socket; exit when the caller closes it."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps finished workers
    warm_up()
    control = socket.socket(fileno=control_fd)
    while True:
        try:
            data, fds = _recv_exact(control, REQUEST.size)
        except OSError:
            return
        if len(data) != REQUEST.size or len(fds) != 2:
            for fd in fds:
                os.close(fd)
            return
        (cap,) = REQUEST.unpack(data)
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                control.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                work(fds[0], fds[1], None if cap < 0 else int(cap))
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        for fd in fds:
            os.close(fd)
        try:
            control.sendall(REQUEST.pack(pid))
        except OSError:
            return


# One answer of each common shape: parsing them once fills ANTLR's prediction cache (the DFA is
# shared by all parsers in a process), and forked workers inherit it.
WARM_UP = (
    ("42", "42.0"),
    ("\\frac{1}{2}", "0.5"),
    ("-\\dfrac{3}{4}", "\\frac{-3}{4}"),
    ("3\\sqrt{2}", "\\sqrt{18}"),
    ("\\{1,2,3\\}", "\\{3,2,1\\}"),
    ("[2,5)", "[2, 5)"),
    ("(-\\infty, 0) \\cup (1, \\infty)", "(1,\\infty)\\cup(-\\infty,0)"),
    ("(3,-4)", "(3, -4)"),
    ("x^2+2x+1", "(x+1)^2"),
    ("50\\%", "50"),
    ("30^\\circ", "30"),
    ("\\text{Monday}", "\\text{Tuesday}"),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}"),
    ("x=2", "2"),
    ("\\pi/2", "\\frac{\\pi}{2}"),
    ("1,000", "1000"),
    ("x \\geq 5", "x \\ge 5"),
)


def warm_up() -> None:
    """Judge :data:`WARM_UP` once so that forked workers start with hot parser caches."""
    try:
        for gold, pred in WARM_UP:
            _judge.judge(gold, pred)
    except Exception:  # a warm-up failure must never stop the server from starting
        pass
    _judge._gold_cache.clear()


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: python -m lensrl.verify._worker CONTROL_FD (started by VerifierPool)",
              file=sys.stderr)
        return 2
    # Ctrl-C and a scheduler's SIGTERM reach the whole process group; they are the caller's to
    # handle (it finishes its step, then closes the pool, which ends this server and its workers
    # with SIGKILL, as does the caller's death through the closed control socket).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    serve(int(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
