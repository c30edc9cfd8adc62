"""The verifier's result type and the closed list of reasons it can give.

One rule decides between ``False`` and ``None``: ``correct is None`` exactly when the *gold* answer
is the problem (empty, unparsable, too long, or it hung the parser). Anything wrong on the
prediction's side is ``False``, so a policy cannot escape a negative reward by producing output
that breaks the verifier (a timeout, a megabyte answer, an unterminated ``\\boxed{``).
"""

from __future__ import annotations

from dataclasses import dataclass

EQUAL = "equal"
NOT_EQUAL = "not equal"
NO_BOXED = "no boxed answer"
NO_ANSWER = "no answer"
UNTERMINATED = "unterminated boxed"
PREDICTION_UNPARSABLE = "prediction unparsable"
GOLD_UNPARSABLE = "gold unparsable"
TOO_LONG = "input too long"
TOO_NESTED = "too deeply nested"
INVALID_CHARS = "invalid characters"
TIMEOUT = "timeout"
CRASHED = "verifier crashed"
GOLD_OK = ""
"""Internal: a worker's answer to a gold-only check (the prediction failed before parsing)."""

REASONS: tuple[str, ...] = (
    EQUAL,
    NOT_EQUAL,
    NO_BOXED,
    NO_ANSWER,
    UNTERMINATED,
    PREDICTION_UNPARSABLE,
    GOLD_UNPARSABLE,
    TOO_LONG,
    TOO_NESTED,
    INVALID_CHARS,
    TIMEOUT,
    CRASHED,
)


@dataclass(frozen=True)
class Verdict:
    """The judgement of one prediction against one gold answer.

    Fields:
        correct: ``True`` / ``False``, or ``None`` when the gold answer cannot be judged against
            (see the module docstring). Never use ``bool(verdict.correct)`` as a reward without
            deciding what ``None`` means.
        reason: one of :data:`REASONS` (``"equal"``, ``"not equal"``, ``"gold unparsable"``, ...).
        extracted: the answer string taken from the prediction (last ``\\boxed{}`` or a fallback),
            or ``None`` when none was found or the input was rejected before extraction.
    """

    correct: bool | None
    reason: str
    extracted: str | None = None
