"""A run's problems: the training stream (:class:`ProblemSampler`) and the held-out split
(:func:`heldout_problems`), both read from the config's ``task`` section, so that training and
``lensrl eval`` build the same split from the same fields. Plain Python: no torch."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from lensrl.data.builtin import builtin_problems
from lensrl.data.loading import load_problems
from lensrl.data.problem import Problem

DEFAULT_LEVELS = (1, 2, 3, 4, 5)
DEFAULT_HELDOUT = 500  # built-in held-out problems when the task section does not say


class ProblemSampler:
    """Deterministic epochs over the training problems; its state is the data position.

    Epoch e is a shuffle seeded by ``seed * 1_000_003 + e``, so seed s sees the same problems in
    the same order whatever the method (the study pairs seeds this way)."""

    def __init__(self, problems: list[Any], seed: int) -> None:
        if not problems:
            raise ValueError("no training problems")
        self.problems = problems
        self.seed = seed
        self.epoch = 0
        self.index = 0
        self._order = self._permutation()

    def _permutation(self) -> list[int]:
        order = list(range(len(self.problems)))
        random.Random(self.seed * 1_000_003 + self.epoch).shuffle(order)
        return order

    def take(self, k: int) -> list[Any]:
        out = []
        for _ in range(k):
            if self.index == len(self._order):
                self.epoch, self.index = self.epoch + 1, 0
                self._order = self._permutation()
            out.append(self.problems[self._order[self.index]])
            self.index += 1
        return out

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "index": self.index}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.index = state["epoch"], state["index"]
        self._order = self._permutation()


def _builtin(task: Mapping[str, Any], split: str, n: int) -> list[Problem]:
    levels = tuple(task.get("levels") or DEFAULT_LEVELS)
    return builtin_problems(split, n, seed=int(task.get("seed", 0)), levels=levels)


def _gym(task: Mapping[str, Any]) -> bool:
    return task.get("source", "dataset") == "reasoning_gym"


def train_problems(task: Mapping[str, Any]) -> list[Problem]:
    """The training problems of a ``task`` section (a dict, or TaskConfig via ``asdict``)."""
    if _gym(task):  # reasoning-gym: its train split, as the built-in task (lensrl.data.gym)
        from lensrl.data.gym import gym_problems

        return gym_problems(task, "train", int(task.get("train_problems") or 0))
    if task.get("dataset", "builtin") == "builtin":
        return _builtin(task, "train", int(task.get("train_problems") or 0))
    return load_problems(task["dataset"])


def heldout_problems(task: Mapping[str, Any], *, limit: int | None = None,
                     data: str | None = None) -> list[Problem]:
    """The held-out problems of a ``task`` section.

    The built-in task: ``task.eval_problems`` problems of the ``test`` split over
    ``task.levels`` (DEFAULT_HELDOUT when absent; ``limit`` of them when given, still balanced
    over the levels); ``task.source: reasoning_gym`` likewise from its test split. A file
    dataset: ``task.eval_dataset``, its first ``task.eval_problems``; none when the config names
    no held-out file. ``data`` (a file, or ``builtin``) replaces the config's source; then only
    ``limit`` cuts it."""
    if _gym(task) and data is None:
        from lensrl.data.gym import gym_problems

        count = limit if limit is not None else int(task.get("eval_problems", DEFAULT_HELDOUT))
        return gym_problems(task, "test", count)
    builtin = task.get("dataset", "builtin") == "builtin"
    source = data if data is not None else ("builtin" if builtin else task.get("eval_dataset"))
    if source == "builtin":
        count = limit if limit is not None else int(task.get("eval_problems", DEFAULT_HELDOUT))
        return _builtin(task, "test", count)
    if not source:
        return []
    problems = load_problems(source)
    count = limit if limit is not None or data is not None else task.get("eval_problems")
    return problems if count is None else problems[:count]
