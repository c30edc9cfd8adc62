"""The built-in task: procedural addition in five levels, offline and deterministic.

Difficulty for a small character-level model comes from operand length (three-digit operands are
learned last) and carries (a carry means the first answer digit depends on the last ones).
``docs/builtin_task.md`` has the design notes and the accuracies measured after warm-up.

======  ===========================================  ==============  ==================
level   problem                                      example         distinct problems
======  ===========================================  ==============  ==================
1       2-digit + 1-digit, no carry                  ``41+5=?``      495
2       2-digit + 1-digit with a carry, or           ``47+8=?``      2,385
        2-digit + 2-digit without one                ``41+35=?``
3       2-digit + 2-digit with a carry               ``47+38=?``     6,120
4       3-digit + 2-digit                            ``347+38=?``    81,000
5       3-digit + 3-digit                            ``347+385=?``   810,000
======  ===========================================  ==============  ==================

The longer operand always comes first when lengths differ. Train and test are split by a hash of
the unordered operand pair, so no problem text (nor its commuted twin) is in both splits,
whatever the seeds: about ``TEST_PERCENT`` % of every level is test. A request for more problems
of a level than its split holds repeats problems in a new order; their ids get a ``#2``, ``#3``...
suffix so ids stay unique.

The expected completion is exactly ``\\boxed{ANSWER}`` (``\\boxed{55}``), and
:func:`lensrl.verify.verify` judges it against ``Problem.answer``.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator

from lensrl.data.problem import Problem

Shape = tuple[int, int, bool | None]  # digits of a, digits of b, carry required / forbidden / any

BUILTIN_LEVELS: dict[int, tuple[Shape, ...]] = {
    1: ((2, 1, False),),
    2: ((2, 1, True), (2, 2, False)),
    3: ((2, 2, True),),
    4: ((3, 2, None),),
    5: ((3, 3, None),),
}
"""Level -> the problem shapes it draws from: (digits of a, digits of b, carry?) for ``a+b``;
``carry`` True needs a carry in some column, False forbids one, None allows either."""
TEST_PERCENT = 20
BUILTIN_TEMPLATE = "{problem} \\boxed{{}}\n"
"""The prompt for the tiny from-scratch model: ``47+8=? \\boxed{}`` and a newline."""
ALPHABET = "".join(sorted(set("0123456789+=? \n\\boxed{}")))
"""Every character of a built-in problem, answer, ``\\boxed{...}`` and :data:`BUILTIN_TEMPLATE`."""

_ENUMERATE_BELOW = 20_000  # levels with fewer problems are listed in full, larger ones sampled


def _digits(n: int) -> range:
    return range(0, 10) if n == 1 else range(10 ** (n - 1), 10**n)


def has_carry(a: int, b: int) -> bool:
    """Whether column addition of ``a + b`` carries in some column."""
    while a or b:
        if a % 10 + b % 10 >= 10:
            return True
        a, b = a // 10, b // 10
    return False


def _fits(shape: Shape) -> Callable[[int, int], bool]:
    carry = shape[2]
    return lambda a, b: carry is None or has_carry(a, b) == carry


def _level_size(level: int) -> int:
    return sum(len(_digits(da)) * len(_digits(db)) for da, db, _ in BUILTIN_LEVELS[level])


def split_of_text(key: str) -> str:
    """``"test"`` or ``"train"`` for a problem named by ``key``: a fixed hash, no seed, so a
    problem lands on the same side whatever the seeds (the gym tasks split by question too)."""
    h = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")
    return "test" if h % 100 < TEST_PERCENT else "train"


def split_of(a: int, b: int) -> str:
    """``"test"`` or ``"train"`` for the problem ``a+b`` (and ``b+a``)."""
    return split_of_text(f"{min(a, b)}+{max(a, b)}")


def _all_pairs(level: int) -> Iterator[tuple[int, int]]:
    for shape in BUILTIN_LEVELS[level]:
        fits = _fits(shape)
        for a in _digits(shape[0]):
            for b in _digits(shape[1]):
                if fits(a, b):
                    yield a, b


def _random_pair(level: int, rng: random.Random) -> tuple[int, int]:
    shape = rng.choice(BUILTIN_LEVELS[level])
    fits = _fits(shape)
    while True:
        a, b = rng.choice(_digits(shape[0])), rng.choice(_digits(shape[1]))
        if fits(a, b):
            return a, b


def _level_pairs(level: int, split: str, n: int, rng: random.Random) -> list[tuple[int, int]]:
    """``n`` pairs of one level and split: distinct while the split has enough, then repeated."""
    if _level_size(level) < _ENUMERATE_BELOW:
        pool = [p for p in _all_pairs(level) if split_of(*p) == split]
        out: list[tuple[int, int]] = []
        while len(out) < n:
            rng.shuffle(pool)
            out.extend(pool[: n - len(out)])
        return out
    seen: set[tuple[int, int]] = set()
    picked: list[tuple[int, int]] = []
    while len(picked) < n:
        pair = _random_pair(level, rng)
        if pair not in seen and split_of(*pair) == split:
            seen.add(pair)
            picked.append(pair)
    return picked


def builtin_problems(
    split: str, n: int, *, seed: int = 0, levels: tuple[int, ...] = (1, 2, 3, 4, 5)
) -> list[Problem]:
    """``n`` built-in problems of ``split`` ("train" or "test"), balanced over ``levels``.

    Deterministic in (split, n, seed, levels); the list is shuffled so levels are interleaved.
    Ids are ``builtin/L<level>/<a>+<b>`` (``#k`` appended to the k-th repeat of a problem).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if (
        not levels
        or any(lv not in BUILTIN_LEVELS for lv in levels)
        or len(set(levels)) < len(levels)
    ):
        raise ValueError(f"levels must be distinct values in 1-5, got {levels!r}")
    problems: list[Problem] = []
    for i, level in enumerate(levels):
        count = n // len(levels) + (1 if i < n % len(levels) else 0)
        rng = random.Random(f"lensrl-builtin/{split}/{seed}/{level}")
        seen: dict[tuple[int, int], int] = {}
        for a, b in _level_pairs(level, split, count, rng):
            seen[(a, b)] = seen.get((a, b), 0) + 1
            repeat = f"#{seen[(a, b)]}" if seen[(a, b)] > 1 else ""
            problems.append(
                Problem(
                    id=f"builtin/L{level}/{a}+{b}{repeat}",
                    problem=f"{a}+{b}=?",
                    answer=str(a + b),
                    level=level,
                    subject="builtin",
                    solution=f"\\boxed{{{a + b}}}",
                )
            )
    random.Random(f"lensrl-builtin/{split}/{seed}/order").shuffle(problems)
    return problems
