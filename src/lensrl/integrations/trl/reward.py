"""``accuracy_reward``: the TRL reward function, on lensrl.verify."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def accuracy_reward(
    completions: Sequence[Any],
    answer: Sequence[Any] | None = None,
    solution: Sequence[Any] | None = None,
    **kwargs: Any,
) -> list[float | None]:
    """TRL reward function: 1.0 right, 0.0 wrong, None when ``lensrl.verify`` cannot judge.

    The answer is the completion's last ``\\boxed{}`` (``strict=True``, the verifier's setting
    for training rewards, so that no format reward is needed). The gold answers come from the
    dataset column ``answer`` (lensrl's ``Problem.answer``) or, failing that, ``solution`` (TRL's
    own ``accuracy_reward``). TRL turns None into NaN, which LENS leaves out of its group
    (advantage 0), never counting it as wrong.
    """
    from lensrl.verify import verify_batch

    golds = answer if answer is not None else solution
    if golds is None:
        raise ValueError(
            "accuracy_reward needs the gold answers in a dataset column named 'answer' "
            "(or 'solution')"
        )
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    rows = [i for i, gold in enumerate(golds) if gold is not None]
    verdicts = verify_batch([str(golds[i]) for i in rows], [texts[i] for i in rows], strict=True)
    rewards: list[float | None] = [None] * len(texts)
    for i, verdict in zip(rows, verdicts):
        rewards[i] = None if verdict.correct is None else float(verdict.correct)
    return rewards
