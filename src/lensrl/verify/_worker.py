"""The worker process of :class:`lensrl.verify.VerifierPool`.

Protocol (one duplex pipe per worker):

* parent -> worker: ``(seq, [(job_id, gold, prediction), ...])`` or ``None`` to stop;
* worker -> parent: ``(seq, [(job_id, correct, reason), ...])`` once the whole chunk is done.

While it works, the worker writes ``(seq, position in chunk, phase, start time)`` into a small
shared array. The parent never waits on a pipe past the current job's deadline: when it expires
it reads that array, kills the worker and knows which job hung and whether the gold answer or the
prediction was being parsed. Results are sent per chunk, not per job, so the IPC cost is one
message each way for tens of pairs.

The pool starts workers with the ``forkserver`` method and preloads this module, so the server
imports Math-Verify and SymPy once and warms their caches; each worker (and each replacement for
a killed one) is then a cheap fork of a single-threaded process, never of a parent that may run
torch threads.
"""

from __future__ import annotations

import os
import signal
import time
from multiprocessing.connection import Connection
from typing import Any

from lensrl.verify import _judge

SEQ, POS, PHASE, START = 0, 1, 2, 3
STATUS_SIZE = 4
PHASE_GOLD, PHASE_PREDICTION = 0.0, 1.0


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


def main(conn: Connection, status: Any, max_memory_mb: int | None) -> None:
    """Serve chunks until the parent sends ``None`` or goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _limit_memory(max_memory_mb)

    def gold_done() -> None:
        status[PHASE] = PHASE_PREDICTION

    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        seq, jobs = msg
        results = []
        for pos, (job_id, gold, pred) in enumerate(jobs):
            # START before POS before SEQ: a reader that sees the new position sees its time.
            status[START] = time.monotonic()
            status[PHASE] = PHASE_GOLD
            status[POS] = pos
            status[SEQ] = seq
            try:
                correct, reason = _judge.judge(gold, pred, gold_done)
            except Exception:
                correct = None if status[PHASE] == PHASE_GOLD else False
                reason = "verifier crashed"
            results.append((job_id, correct, reason))
        try:
            conn.send((seq, results))
        except (BrokenPipeError, OSError):
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
)


def warm_up() -> None:
    """Judge :data:`WARM_UP` once so that forked workers start with hot parser caches."""
    try:
        for gold, pred in WARM_UP:
            _judge.judge(gold, pred)
    except Exception:  # a warm-up failure must never stop the forkserver from starting
        pass
    _judge._gold_cache.clear()


warm_up()
