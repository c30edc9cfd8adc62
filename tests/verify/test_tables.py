"""Verdict tables, one per failure family: (gold, prediction, expected, why).

``expected`` is True / False / None (None: the gold cannot be judged). Predictions are model
completions: the answer is their last ``\\boxed{}`` unless a family says otherwise. All rows are
judged in one batch (a warm pool), then checked one test per row.
"""

from __future__ import annotations

import pytest

from lensrl.verify import Verdict, VerifierPool
from lensrl.verify import verdict as R

Row = tuple[str, str, bool | None, str]


def box(answer: str) -> str:
    return f"Let me think. ... so the result is \\boxed{{{answer}}}."


TABLES: dict[str, list[Row]] = {
    "fractions vs decimals": [
        ("\\frac{1}{2}", box("0.5"), True, "exact decimal of a fraction"),
        ("0.5", box("\\frac12"), True, "\\frac12 shorthand"),
        ("\\frac{3}{4}", box("3/4"), True, "slash fraction"),
        ("\\dfrac{3}{4}", box("\\tfrac{3}{4}"), True, "dfrac / tfrac"),
        ("\\frac{2}{4}", box("\\frac{1}{2}"), True, "unsimplified gold"),
        ("\\frac{1}{3}", box("0.333333"), True, "Math-Verify rounds to 6 places"),
        ("\\frac{1}{3}", box("0.333"), False, "three places is another number"),
        ("\\frac{1}{7}", box("0.1429"), False, "rounded decimal"),
        ("1.5", box("\\frac{3}{2}"), True, "decimal gold, fraction prediction"),
        ("9", box("9.0"), True, "trailing zero"),
        ("\\frac{1}{2}", box("\\frac{2}{3}"), False, "different fraction"),
    ],
    "radicals": [
        ("3\\sqrt{2}", box("\\sqrt{18}"), True, "simplified vs not"),
        ("3\\sqrt{2}", box("3\\sqrt2"), True, "\\sqrt2 shorthand"),
        ("\\frac{\\sqrt{3}}{2}", box("\\frac{1}{2}\\sqrt{3}"), True, "coefficient placement"),
        ("\\sqrt[3]{2}", box("2^{1/3}"), True, "cube root as power"),
        ("2\\sqrt{3}", box("3\\sqrt{2}"), False, "swapped"),
        ("3\\sqrt{2}", box("4.24"), False, "two-place decimal"),
        ("3\\sqrt{2}", box("4.242640687"), True, "decimal to 6+ places"),
    ],
    "sets": [
        ("\\{1,2,3\\}", box("\\{3,2,1\\}"), True, "order does not matter in a set"),
        ("\\{1,2,3\\}", box("1, 2, 3"), True, "a bare list reads as a set"),
        ("1, 2, 3", box("3,1,2"), True, "list of solutions"),
        ("\\{1,2,3\\}", box("\\{1,2\\}"), False, "missing element"),
        ("\\{1,2\\}", box("\\{1,2,3\\}"), False, "extra element"),
        ("3", box("\\{1,2,3\\}"), False, "a set is not its last element"),
    ],
    "intervals vs tuples": [
        ("(2,3)", box("(2, 3)"), True, "spacing"),
        ("(3,2)", box("(2,3)"), False, "an ordered pair is ordered"),
        ("(1,-2)", box("\\left(1,-2\\right)"), True, "\\left( \\right)"),
        ("[2,3)", box("[2,3)"), True, "half-open"),
        ("[2,3)", box("(2,3)"), False, "endpoint included vs excluded"),
        ("(2,3)", box("(2,3]"), False, "endpoint"),
        ("(2,3)", box("\\{2,3\\}"), False, "set braces are neither a pair nor an interval"),
        ("\\{2,3\\}", box("(2,3)"), False, "a pair is not a set"),
        ("(-\\infty,0)\\cup(1,\\infty)", box("(1,\\infty)\\cup(-\\infty,0)"), True, "union order"),
        ("(-\\infty, 3]", box("(-\\infty,3)"), False, "closed end"),
        ("[1,5]", box("[1, 5]"), True, "closed interval"),
    ],
    "polynomials": [
        ("x^2+2x+1", box("(x+1)^2"), True, "factored"),
        ("2x+1", box("1+2x"), True, "commuted"),
        ("x^2+2x+1", box("x^2+2x+2"), False, "constant differs"),
        ("x^2+2x+1", box("y^2+2y+1"), False, "the variable matters"),
        ("x^2-1", box("(x-1)(x+1)"), True, "difference of squares"),
        ("x=3", box("3"), True, "assignment gold, bare value"),
        ("3", box("x=3"), True, "bare gold, assignment prediction"),
    ],
    "units and degrees": [
        ("30^\\circ", box("30"), True, "degree sign dropped"),
        ("30", box("30^{\\circ}"), True, "degree sign added"),
        ("10\\text{ cm}", box("10"), True, "unit dropped"),
        ("10", box("10\\text{ cm}"), True, "unit added"),
        ("5\\text{ inches}", box("6"), False, "wrong number with a unit"),
        ("90^\\circ", box("\\frac{\\pi}{2}"), False, "degrees are not converted to radians"),
        ("\\$5", box("5"), True, "dollar sign"),
    ],
    "percent": [
        ("50\\%", box("50"), True, "percent sign dropped"),
        ("50", box("50\\%"), True, "percent sign added"),
        ("25\\%", box("0.25"), True, "as a fraction of one"),
        ("25", box("0.25"), False, "a bare 25 is not 0.25"),
        ("25\\%", box("26\\%"), False, "different percentage"),
    ],
    "thousands separators": [
        ("1,000", box("1000"), True, "comma separator in gold"),
        ("1000", box("1{,}000"), True, "{,} separator"),
        ("1000", box("1,\\!000"), True, "MATH's ,\\! separator"),
        ("1234567", box("1\\,234\\,567"), True, "thin-space separator"),
        ("1234567", box("1 234 567"), True, "space separator"),
        ("1000", box("1,001"), False, "different number"),
        ("1,2", box("12"), False, "a comma before one digit separates list items"),
    ],
    "signs": [
        ("-3", box("-3"), True, "same"),
        ("-3", box("3"), False, "sign dropped"),
        ("3", box("-3"), False, "sign added"),
        ("-3", box("- 3"), True, "space after minus"),
        ("0", box("-0"), True, "negative zero"),
        ("-\\frac{1}{2}", box("\\frac{-1}{2}"), True, "sign in the numerator"),
        ("\\pm 2", box("2"), False, "one of two roots"),
        ("\\pm 2", box("2, -2"), True, "both roots"),
    ],
    "unicode and stray punctuation": [
        ("45^\\circ", box("45\u00b0"), True, "degree sign"),
        ("-3", box("\u22123"), True, "Unicode minus"),
        ("2\\pi", box("2\u03c0"), True, "Unicode pi"),
        ("3", box("3."), True, "full stop inside the box"),
        ("3.5", box("3.5."), True, "full stop after a decimal"),
        ("-3", box("\u22124"), False, "Unicode minus, wrong value"),
    ],
    "text answers": [
        ("\\text{Monday}", box("\\text{Monday}"), True, "same word"),
        ("\\text{Evelyn}", box("\\text{evelyn}"), True, "case-insensitive"),
        ("\\text{Evelyn}", box("\\text{Anna}"), False, "another name"),
        ("\\text{(C)}", box("C"), True, "multiple-choice letter"),
        ("\\text{(A)}", box("\\text{(B)}"), False, "another letter"),
        ("\\text{even}", box("\\text{odd}"), False, "another word"),
    ],
    "multiple boxed answers": [
        ("7", "First \\boxed{5}. Wait, that is wrong: \\boxed{7}", True, "the last box counts"),
        (
            "5",
            "First \\boxed{5}. Wait, that is wrong: \\boxed{7}",
            False,
            "an earlier box does not",
        ),
        ("2, 3", "x = 2 or 3, so \\boxed{2} and \\boxed{3}", True, "adjacent boxes form a list"),
        ("3", "\\boxed{2}, \\boxed{3}", False, "hedging between two answers"),
        ("\\{2,3\\}", "\\boxed{2}, \\boxed{3}", True, "list against a set"),
    ],
    "no answer": [
        ("3", "I am not sure how to solve this problem, sorry.\nMaybe later.", False, "nothing"),
        ("3", "", False, "empty completion"),
        ("3", "\\boxed{}", False, "empty box"),
        ("3", "so the answer is \\boxed{3", False, "unterminated box: truncated output"),
        ("18", "She has 18 dollars left.", False, "no last-number fallback"),
    ],
    "fallbacks": [
        ("72", "48 + 24 = 72 clips in total.\n#### 72", True, "GSM8K ####"),
        ("42", "The answer is 42.", True, "'The answer is'"),
        (
            "\\frac{1}{2}",
            "The final answer is $\\frac{1}{2}$. I hope it is correct.",
            True,
            "Minerva",
        ),
        ("3.5", "Answer: 3.5", True, "'Answer:'"),
        ("42", "42", True, "a bare short answer"),
        ("42", "The answer is 41.", False, "fallback, wrong value"),
    ],
    "gold forms": [
        ("$3\\sqrt{2}$", box("\\sqrt{18}"), True, "gold in $...$"),
        ("\\boxed{(2,3)}", box("(2,3)"), True, "gold in \\boxed{}"),
        ("We get $\\boxed{12}$ in total.", box("12"), True, "a MATH solution as gold"),
        ("4 + 3 = 7 apples.\n#### 7", box("7"), True, "a GSM8K answer as gold"),
        ("\\(x^2\\)", box("x^2"), True, "gold in \\(...\\)"),
    ],
    "gold cannot be judged": [
        ("", box("3"), None, "empty gold"),
        ("   ", box("3"), None, "blank gold"),
        ("\\frac{", box("3"), None, "unparsable gold"),
        ("\\boxed{3", box("3"), None, "unterminated box in the gold"),
        ("}}}", box("}}}"), None, "garbage gold, even when the prediction copies it"),
        ("1" * 5000, box("1"), None, "gold too long"),
    ],
}

STRICT: list[Row] = [
    ("72", "48 + 24 = 72 clips in total.\n#### 72", False, "#### is not a boxed answer"),
    ("42", "The answer is 42.", False, "the phrase is not a boxed answer"),
    ("42", "42", False, "bare answers are not accepted"),
    ("42", box("42"), True, "boxed is"),
    ("", "The answer is 42.", None, "the gold still decides None first"),
]

ROWS = [(family, *row) for family, rows in TABLES.items() for row in rows]


@pytest.fixture(scope="module")
def verdicts(pool: VerifierPool) -> dict[tuple[str, str, bool], Verdict]:
    out = {}
    for strict, rows in ((False, [r[1:] for r in ROWS]), (True, STRICT)):
        golds = [r[0] for r in rows]
        preds = [r[1] for r in rows]
        for g, p, v in zip(golds, preds, pool.verify_batch(golds, preds, strict=strict)):
            out[(g, p, strict)] = v
    return out


@pytest.mark.parametrize(("family", "gold", "prediction", "expected", "why"), ROWS)
def test_table(
    verdicts: dict[tuple[str, str, bool], Verdict],
    family: str,
    gold: str,
    prediction: str,
    expected: bool | None,
    why: str,
) -> None:
    v = verdicts[(gold, prediction, False)]
    assert v.correct is expected, f"{family}: {why}: {v}"
    assert v.reason in R.REASONS
    assert (v.reason == R.EQUAL) == (v.correct is True)


@pytest.mark.parametrize(("gold", "prediction", "expected", "why"), STRICT)
def test_strict(
    verdicts: dict[tuple[str, str, bool], Verdict],
    gold: str,
    prediction: str,
    expected: bool | None,
    why: str,
) -> None:
    v = verdicts[(gold, prediction, True)]
    assert v.correct is expected, f"{why}: {v}"


def test_reasons_and_extracted(pool: VerifierPool) -> None:
    golds = ["3", "3", "3", "", "3", "\\frac{", "3"]
    preds = [box("3"), box("4"), "no box here", box("3"), "\\boxed{3", box("3"), box("\\sqrt{}")]
    got = pool.verify_batch(golds, preds, strict=True)
    assert [v.reason for v in got] == [
        R.EQUAL,
        R.NOT_EQUAL,
        R.NO_BOXED,
        R.GOLD_UNPARSABLE,
        R.UNTERMINATED,
        R.GOLD_UNPARSABLE,
        R.PREDICTION_UNPARSABLE,
    ]
    assert [v.extracted for v in got[:3]] == ["3", "4", None]
