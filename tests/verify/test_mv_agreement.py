"""Agreement with Math-Verify on tables in the families of its own test files (mv_cases.py).

Two checks. Every row gets its expected verdict (a regression table, zero false "correct"). And
lensrl's verdict agrees with Math-Verify's full pipeline, ``verify(parse(gold), parse(pred))``
with its default extractors, on at least 95% of the rows. That reference is computed here, in the
test process, on our own fixed strings: its expression extractor calls ``sympy.parse_expr``,
which is why ``lensrl.verify`` never uses it on model text. Rows where the two differ are the
deliberate ones (Math-Verify does not read ``\\fbox``, ``=<``, a Unicode minus or a pair in prose,
joins a scalar gold's last box with a previous one, and takes a stray number without an answer
phrase); the test prints them.
"""

from __future__ import annotations

import pytest

from lensrl.verify import Verdict, VerifierPool
from tests.verify.mv_cases import CASES

ROWS = [(family, *row) for family, rows in CASES.items() for row in rows]
MIN_AGREEMENT = 0.95


@pytest.fixture(scope="module")
def ours(pool: VerifierPool) -> list[Verdict]:
    return pool.verify_batch([r[1] for r in ROWS], [r[2] for r in ROWS], strict=False)


def _math_verify(gold: str, prediction: str) -> bool:
    from math_verify import parse, verify

    try:
        return bool(verify(parse(gold), parse(prediction)))
    except Exception:  # its own errors count as "not equal", as in its default mode
        return False


@pytest.mark.parametrize(
    ("index", "family", "gold", "prediction", "expected", "why"),
    [(i, *row) for i, row in enumerate(ROWS)],
    ids=[f"{r[0]}: {r[4]}" for r in ROWS],
)
def test_row(
    ours: list[Verdict],
    index: int,
    family: str,
    gold: str,
    prediction: str,
    expected: bool,
    why: str,
) -> None:
    assert ours[index].correct is expected, f"{family}: {why}: {ours[index]}"


def test_agreement_with_math_verify(ours: list[Verdict]) -> None:
    reference = [_math_verify(r[1], r[2]) for r in ROWS]
    differ = [i for i, (v, mv) in enumerate(zip(ours, reference)) if (v.correct is True) != mv]
    agreement = 1 - len(differ) / len(ROWS)
    print(f"agreement with Math-Verify: {len(ROWS) - len(differ)}/{len(ROWS)} = {agreement:.1%}")
    for i in differ:
        print(f"  differs: {ROWS[i][0]}: {ROWS[i][4]}: lensrl {ours[i].correct}, "
              f"Math-Verify {reference[i]}")
    assert agreement >= MIN_AGREEMENT, [ROWS[i] for i in differ]
    # Zero false "correct": wherever we say correct and Math-Verify does not, the row's expected
    # verdict (the truth, as the row's "why" explains) is correct too.
    false_correct = [ROWS[i] for i in differ if ours[i].correct is True and not ROWS[i][3]]
    assert not false_correct, false_correct
