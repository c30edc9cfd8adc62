"""The part of a judgement decided in the calling process, before any parsing.

``prepare`` extracts both answers and applies the size and character limits; ``finish`` turns a
worker's ``(correct, reason)`` into the final :class:`Verdict`. The serial baseline of the
benchmark and the pool share them, so both judge exactly alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from lensrl.verify import verdict as R
from lensrl.verify.extract import (
    MAX_TEXT_CHARS,
    check_answer,
    extract_gold,
    extract_prediction,
    is_list_answer,
)
from lensrl.verify.verdict import Verdict


def _as_text(value: object, name: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"{name} must be a str, got {type(value).__name__}")


@dataclass(frozen=True)
class Prepared:
    """What the calling process decided before any parsing.

    ``prediction`` is the extracted answer to judge against ``gold``; when it is None the
    prediction already failed (``failed`` says how) and only the gold still has to be parsed, so
    that an unparsable gold gives ``None`` rather than the prediction's ``False``.
    """

    gold: str
    prediction: str | None
    failed: Verdict | None = None


def prepare(gold: object, prediction: object, *, strict: bool) -> Verdict | Prepared:
    """Everything decided without parsing: a final Verdict (gold rejected), or :class:`Prepared`."""
    gold_text = _as_text(gold, "gold")
    pred_text = _as_text(prediction, "prediction")
    if len(gold_text) > MAX_TEXT_CHARS:
        return Verdict(None, R.TOO_LONG)
    gold_answer = extract_gold(gold_text)
    if gold_answer is None:
        return Verdict(None, R.GOLD_UNPARSABLE)
    bad = check_answer(gold_answer)
    if bad is not None:
        return Verdict(None, bad)
    if len(pred_text) > MAX_TEXT_CHARS:
        return Prepared(gold_answer, None, Verdict(False, R.TOO_LONG))
    found = extract_prediction(pred_text, strict=strict, list_gold=is_list_answer(gold_answer))
    if found.answer is None:
        return Prepared(gold_answer, None, Verdict(False, found.reason))
    bad = check_answer(found.answer)
    if bad is not None:
        extracted = None if bad == R.TOO_LONG else found.answer
        return Prepared(gold_answer, None, Verdict(False, bad, extracted))
    return Prepared(gold_answer, found.answer)


def finish(prepared: Prepared, correct: bool | None, reason: str) -> Verdict:
    """The Verdict for a prepared pair, given what the worker said about it."""
    if prepared.failed is not None and reason == R.GOLD_OK:
        return prepared.failed
    return Verdict(correct, reason, prepared.prediction)
