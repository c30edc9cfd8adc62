"""The built-in task: deterministic, disjoint splits for any seeds, balanced, small alphabet,
answers judged right by the verifier."""

from __future__ import annotations

from collections import Counter

import pytest

from lensrl.data import ALPHABET, BUILTIN_LEVELS, BUILTIN_TEMPLATE, builtin_problems, format_prompt
from lensrl.data.builtin import _all_pairs, has_carry, split_of


def test_deterministic_and_seeded() -> None:
    a = builtin_problems("train", 300, seed=3)
    assert a == builtin_problems("train", 300, seed=3)
    assert a != builtin_problems("train", 300, seed=4)
    assert builtin_problems("test", 50, seed=1, levels=(2, 4)) == builtin_problems(
        "test", 50, seed=1, levels=(2, 4)
    )


def test_splits_are_disjoint_for_any_seeds() -> None:
    train = set()
    for seed in range(4):
        train |= {p.problem for p in builtin_problems("train", 5000, seed=seed)}
    test = set()
    for seed in range(4):
        test |= {p.problem for p in builtin_problems("test", 2000, seed=seed)}
    assert not train & test
    # the split is a function of the unordered operands: no commuted twin crosses over either
    twin = {f"{b}+{a}=?" for a, b in (p.removesuffix("=?").split("+") for p in test)}
    assert not train & twin


def test_split_covers_every_small_level_exactly_once() -> None:
    for level in (1, 2, 3):
        pairs = list(_all_pairs(level))
        assert len(pairs) == len(set(pairs))
        share = Counter(split_of(a, b) for a, b in pairs)["test"] / len(pairs)
        assert 0.12 < share < 0.28, (level, share)


def test_balanced_ids_unique_and_fields() -> None:
    got = builtin_problems("train", 1003, seed=0)
    assert len(got) == 1003
    counts = Counter(p.level for p in got)
    assert set(counts) == {1, 2, 3, 4, 5} and max(counts.values()) - min(counts.values()) <= 1
    assert len({p.id for p in got}) == len(got)
    for p in got:
        a, b = (int(x) for x in p.problem.removesuffix("=?").split("+"))
        assert p.answer == str(a + b)
        assert p.subject == "builtin" and p.solution == f"\\boxed{{{p.answer}}}"
        assert p.id.startswith(f"builtin/L{p.level}/{a}+{b}")
    assert Counter(p.level for p in builtin_problems("test", 10, levels=(4, 5))) == {4: 5, 5: 5}


def test_level_shapes() -> None:
    for p in builtin_problems("train", 2000, seed=7):
        a, b = (int(x) for x in p.problem.removesuffix("=?").split("+"))
        shapes = BUILTIN_LEVELS[p.level or 0]
        assert any(
            len(str(a)) == da and len(str(b)) == db and (carry is None or has_carry(a, b) == carry)
            for da, db, carry in shapes
        ), p


def test_train_split_is_large_at_levels_two_and_up() -> None:
    for level in (2, 3, 4, 5):
        got = builtin_problems("train", 3000, seed=0, levels=(level,))
        assert len({p.problem for p in got}) >= 1500, level
    test = builtin_problems("test", 1000, seed=0, levels=(2, 3, 4, 5))
    assert len({p.problem for p in test}) == 1000


def test_repeats_get_unique_ids() -> None:
    got = builtin_problems("test", 400, levels=(1,))  # level 1 has ~90 test problems
    assert len({p.id for p in got}) == 400
    assert len({p.problem for p in got}) < 120
    assert any(p.id.endswith("#2") for p in got)


def test_alphabet_is_small_and_complete() -> None:
    assert len(ALPHABET) <= 24 and len(set(ALPHABET)) == len(ALPHABET)
    got = builtin_problems("train", 500) + builtin_problems("test", 500)
    for p in got:
        prompt = format_prompt(p, template=BUILTIN_TEMPLATE)
        assert set(prompt + p.solution + p.answer) <= set(ALPHABET), p  # type: ignore[operator]
        assert len(p.problem) <= 16 and len(p.answer) <= 5
    assert "\\boxed{}" in format_prompt(got[0], template=BUILTIN_TEMPLATE)
    assert len(BUILTIN_TEMPLATE.format(problem="")) <= 12


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("valid", 10), {}),
        (("train", -1), {}),
        (("train", 10), {"levels": (0,)}),
        (("train", 10), {"levels": (6,)}),
        (("train", 10), {"levels": ()}),
        (("train", 10), {"levels": (2, 2)}),
    ],
)
def test_bad_arguments(args: tuple[str, int], kwargs: dict[str, tuple[int, ...]]) -> None:
    with pytest.raises(ValueError):
        builtin_problems(*args, **kwargs)


def test_zero_problems() -> None:
    assert builtin_problems("train", 0) == []


def test_expected_completion_is_judged_right_by_the_verifier() -> None:
    from lensrl.verify import VerifierPool

    problems = builtin_problems("test", 50, seed=2)
    completions = [f"\\boxed{{{p.answer}}}" for p in problems]
    wrong = [f"\\boxed{{{int(p.answer) + 1}}}" for p in problems]
    with VerifierPool(workers=1) as pool:
        right = pool.verify_batch([p.answer for p in problems], completions, strict=True)
        off = pool.verify_batch([p.answer for p in problems], wrong, strict=True)
    assert all(v.correct is True for v in right)
    assert all(v.correct is False for v in off)
