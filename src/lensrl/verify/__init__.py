"""Judge answers with Math-Verify: bounded in time, safe on hostile input, explicit about "cannot judge".

``verify(gold=..., prediction=...)`` returns a :class:`Verdict` whose ``correct`` is ``True``,
``False``, or ``None`` when the gold answer itself cannot be judged (empty, unparsable, too long).
Predictions are read from their last ``\\boxed{}``; ``strict=True`` (training rewards) accepts
nothing else, the default also tries ``#### 42``, "The answer is ..." (display math, or a plain
number in prose) and short bare answers. Work runs in a :class:`VerifierPool` of worker processes
with a wall-clock limit per pair; they are forked by a server started as
``python -m lensrl.verify._worker``, so any script works, guarded or not. A pool that cannot work
raises :class:`VerifierError`. See ``docs/verifier.md``.

This package imports neither torch nor Math-Verify in the calling process.
"""

from lensrl.verify._ipc import VerifierError
from lensrl.verify.extract import extract_gold, extract_prediction
from lensrl.verify.pool import VerifierPool, default_pool, verify, verify_batch
from lensrl.verify.verdict import REASONS, Verdict

__all__ = [
    "REASONS",
    "Verdict",
    "VerifierError",
    "VerifierPool",
    "default_pool",
    "extract_gold",
    "extract_prediction",
    "verify",
    "verify_batch",
]
