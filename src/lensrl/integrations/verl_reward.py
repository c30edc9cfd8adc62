"""verl's ``custom_reward_function`` for LENS: binary Math-Verify correctness via lensrl.verify.

Point verl at this file (it imports no verl, so verl may load it by path as often as it likes)::

    reward.custom_reward_function.path=$(python -c 'import lensrl.integrations.verl_reward as m; print(m.__file__)')
    reward.custom_reward_function.name=compute_score

LENS needs rewards in {0, 1} (docs/algorithm.md §6 fact 13): never DAPO's ±1. "Cannot judge" (an
unparseable gold answer, a timeout) scores 0.0 like a wrong answer — verl's reward is a float and
NaN would poison its metrics — and is flagged ``judged=False``; the ``lens_sync`` trainer reads
that flag and leaves such rows out of their group's statistics, as lensrl.core does with NaN.
"""

from __future__ import annotations

from typing import Any


def compute_score(
    data_source: Any,
    solution_str: str,
    ground_truth: Any,
    extra_info: Any = None,
    *,
    timeout: float = 5.0,
    strict: bool = True,
    **_: Any,
) -> dict[str, Any]:
    """Score one response; verl calls it with keywords, ``timeout``/``strict`` via ``reward_kwargs``.

    ``strict=True`` by default, as lensrl.verify recommends for training rewards: only the last
    ``\\boxed{}`` counts, so the prompt must ask for it (recipes/verl/prepare_math.py does).

    Returns:
        ``score``: 1.0 right, 0.0 wrong or cannot judge (the reward verl puts on the last token);
        ``acc``: the same number, for verl's ``acc`` metrics and DAPO-style filters;
        ``pred``: the extracted answer, "" if none; ``judged``: False for "cannot judge";
        ``reason``: the verifier's reason string.
    """
    from lensrl.verify import verify

    verdict = verify(
        gold=str(ground_truth), prediction=solution_str, timeout=timeout, strict=strict
    )
    right = 1.0 if verdict.correct else 0.0
    return {
        "score": right,
        "acc": right,
        "pred": verdict.extracted or "",
        "judged": verdict.correct is not None,
        "reason": verdict.reason,
    }
