"""The record every stage passes around, and the one error type of the data layer."""

from __future__ import annotations

from dataclasses import dataclass


class DataError(ValueError):
    """Malformed input data. The message names the file, the line (``line N``) and the field."""


@dataclass(frozen=True)
class Problem:
    """One problem with its reference answer.

    Fields:
        id: unique and stable within its source (``unique_id``/``id`` from the file, else
            ``<file stem>:<line>``; ``builtin/L3/47+38`` for the built-in task).
        problem: the question text shown to the model.
        answer: the gold answer as given (bare LaTeX such as ``3\\sqrt{2}``), judged by
            :func:`lensrl.verify.verify`.
        level: difficulty 1-5 (MATH levels, or the built-in task's levels), None if unknown.
        subject: MATH subject / ``type`` (``"Algebra"``), ``"builtin"``, or None.
        solution: a worked solution if the source has one, else None.
    """

    id: str
    problem: str
    answer: str
    level: int | None = None
    subject: str | None = None
    solution: str | None = None
