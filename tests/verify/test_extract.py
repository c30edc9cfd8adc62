"""Answer extraction: pure string work, linear time, no parsing (lensrl.verify.extract)."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lensrl.verify import extract as E
from lensrl.verify import verdict as R


@pytest.mark.parametrize(
    ("text", "answer", "why"),
    [
        ("so \\boxed{42}.", "42", "plain"),
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}", "nested braces"),
        ("\\boxed{\\{1,2\\}}", "\\{1,2\\}", "escaped braces are characters, not grouping"),
        ("first \\boxed{5}, then \\boxed{7}", "7", "last box wins"),
        ("\\boxed{2}, \\boxed{3}", "2, 3", "adjacent boxes form a list"),
        ("\\boxed{2} and \\boxed{3}", "2, 3", "'and' joins"),
        ("$\\boxed{2}$ or $\\boxed{3}$", "2, 3", "'or' and dollars join"),
        ("\\boxed{2} \\text{ and } \\boxed{3}", "2, 3", "\\text{ and } joins"),
        ("\\boxed{5}. Wait, no: \\boxed{7}", "7", "words between boxes do not join"),
        ("\\boxed{5} \\boxed{7}", "7", "a space alone does not join (as in Math-Verify)"),
        ("$\\boxed{5}$\n\n$\\boxed{7}$", "7", "neither do dollars and newlines"),
        ("\\fbox{9}", "9", "fbox"),
        ("\\boxed 5.", "5", "boxed without braces"),
        ("\\boxed { 8 }", "8", "spaces"),
    ],
)
def test_last_boxed(text: str, answer: str, why: str) -> None:
    assert E.extract_prediction(text).answer == answer, why


@pytest.mark.parametrize(
    ("text", "strict", "answer", "reason"),
    [
        ("the answer is \\boxed{3", False, None, R.UNTERMINATED),
        ("\\boxed{5} then \\boxed{7", False, None, R.UNTERMINATED),
        ("\\boxed{}", False, None, R.NO_ANSWER),
        ("The answer is 42.", True, None, R.NO_BOXED),
        ("#### 42", True, None, R.NO_BOXED),
        ("no digits here at all, just a long ramble\n" * 3, False, None, R.NO_ANSWER),
        ("", False, None, R.NO_ANSWER),
        ("Natalia sold 48/2 = 24 clips.\n#### 72", False, "72", ""),
        ("The answer is 42.", False, "42", ""),
        ("So the final answer is $\\frac{1}{2}$. I hope it is correct.", False, "\\frac{1}{2}", ""),
        ("Answer: 3.5", False, "3.5", ""),
        ("Final Answer: The final answer is 7. I hope it is correct.", False, "7", ""),
        ("42", False, "42", ""),
        ("$\\frac{3}{4}$", False, "\\frac{3}{4}", ""),
    ],
)
def test_fallbacks_and_strict(text: str, strict: bool, answer: str | None, reason: str) -> None:
    got = E.extract_prediction(text, strict=strict)
    assert got.answer == answer
    if answer is None:
        assert got.reason == reason


@pytest.mark.parametrize(
    ("gold", "answer"),
    [
        ("3\\sqrt{2}", "3\\sqrt{2}"),
        ("  (2,3) ", "(2,3)"),
        ("$x^2+2x+1$", "x^2+2x+1"),
        ("$$\\{1,2,3\\}$$", "\\{1,2,3\\}"),
        ("\\(5\\)", "5"),
        ("\\boxed{7}", "7"),
        ("We add them, so the total is $\\boxed{12}$.", "12"),
        ("She has 3 + 4 = 7 left.\n#### 7", "7"),
        ("", None),
        ("   ", None),
        ("$$", None),
        ("\\boxed{3", None),
        ("$5$ and $6$", "$5$ and $6$"),
    ],
)
def test_extract_gold(gold: str, answer: str | None) -> None:
    assert E.extract_gold(gold) == answer


def test_check_answer() -> None:
    assert E.check_answer("3\\sqrt{2}") is None
    assert E.check_answer("1" * (E.MAX_ANSWER_CHARS + 1)) == R.TOO_LONG
    assert E.check_answer("3\x00") == R.INVALID_CHARS
    assert E.check_answer("{" * 30 + "}" * 30) == R.TOO_NESTED
    assert E.check_answer("\\frac{\\sqrt{2}}{\\left(1+x^{2}\\right)}") is None


@pytest.mark.parametrize(
    "text",
    [
        "\\boxed{" * 200_000,
        "{" * 500_000,
        "\\boxed{1}" * 50_000,
        "answer is " * 50_000,
        "$" * 400_000,
        "#### " * 100_000,
        "\\boxed{" + "x" * 500_000,
    ],
)
@pytest.mark.slow  # asserts wall-clock time
def test_extraction_is_fast_on_large_input(text: str) -> None:
    start = time.perf_counter()
    E.extract_prediction(text)
    E.extract_gold(text)
    E.check_answer(text)
    assert time.perf_counter() - start < 1.0


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_extraction_never_raises(text: str) -> None:
    for strict in (False, True):
        got = E.extract_prediction(text, strict=strict)
        assert got.answer is None or isinstance(got.answer, str)
        assert got.answer is not None or got.reason in R.REASONS
    E.extract_gold(text)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="{}\\$"), min_size=1, max_size=50))
def test_boxed_round_trip(content: str) -> None:
    if content.strip():
        assert E.extract_prediction(f"blah \\boxed{{{content}}} blah").answer == content.strip()


@pytest.mark.parametrize(
    ("text", "answer", "why"),
    [
        ("Final Answer: The largest $n$ is 34.", "34", "a number after a math name"),
        ("Final answer: the number is 1,000.99\u20ac", "1000.99", "thousands, currency"),
        ("Answer: the length is 1,22 m", "1.22", "decimal comma"),
        ("Answer: the length is 1,220 m", "1220", "three digits after a comma: thousands"),
        ("The answer is 25 apples, because 5 x 5 = 25.", "25", "the first number answers"),
        ("The answer is \u22123 degrees.", "-3", "Unicode minus"),
        ("The final answer is 3/4 of the cake.", "3/4", "a fraction is one number"),
        ("The answer is $5$ apples and 3 pears.", None, "two quantities: not one answer"),
        ("The answer is x >= 5.", "x >= 5", "bare mathematics is taken whole"),
        ("The answer is (2, 3).", "(2, 3)", "a pair"),
        ("**Final Answer**\n$$ 9 $$", "9", "display dollars under a heading"),
        ("Final Answer:\n\\[ 9 \\]", "9", "display brackets on the next line"),
        ("The answer is: \\[\\frac{1}{2}\\]", "\\frac{1}{2}", "display brackets on the line"),
        ("Answer: $$8$$", "8", "display dollars inline"),
        ("The answer is \\text{five} apples", "\\text{five}", "text, then a unit"),
    ],
)
def test_answer_after_phrase(text: str, answer: str | None, why: str) -> None:
    assert E.extract_prediction(text).answer == answer, why


@pytest.mark.parametrize(
    ("answer", "is_list"),
    [
        ("1, 2", True),
        ("\\{1,2\\}", True),
        ("(1, 2)", True),
        ("$1,2$", True),
        ("1,000", False),
        ("1{,}000", False),
        ("1,\\!000", False),
        ("[2,3)", False),
        ("\\frac{1}{2}", False),
        ("f(1, 2)", False),
        ("3", False),
    ],
)
def test_is_list_answer(answer: str, is_list: bool) -> None:
    assert E.is_list_answer(answer) is is_list


@pytest.mark.parametrize(
    ("text", "list_gold", "answer"),
    [
        ("\\boxed{1}\\boxed{2}", True, "1, 2"),
        ("$\\boxed{1}$\n\n$\\boxed{2}$", True, "1, 2"),
        ("\\boxed{1}\\boxed{2}", False, "2"),
        ("\\boxed{1} so \\boxed{2}", True, "2"),
        ("\\boxed{1}\\boxed{2, 3}", True, "2, 3"),
        ("\\boxed{1, 2}\\boxed{3}", True, "3"),
        ("\\boxed{1}, \\boxed{2}\\boxed{3}", True, "1, 2, 3"),
    ],
)
def test_boxes_joined_for_a_list_gold(text: str, list_gold: bool, answer: str) -> None:
    assert E.extract_prediction(text, list_gold=list_gold).answer == answer


@pytest.mark.parametrize(
    "text",
    [
        "The answer is " + "1," * 200_000,
        "The answer is " + "1" * 400_000,
        "Final Answer\n$$" + " 9" * 200_000,
        "Answer: \\[" + "x" * 400_000,
        "The answer is $n$ " + "$a$ 1 " * 60_000,
        "Final answer " * 50_000,
        ("\\boxed{1}" + " " * 150) * 3_000,
        "Therefore, " * 60_000,
        "The answer is 3 " + "x is " * 100_000,
        "So the value is " + "**" * 200_000,
        "3" + "." * 400_000,
        "\\boxed{1} The answer is " + "$" * 400_000,
        "Thus " + "$a$ " * 100_000 + "is 3",
        "The answer is 3. " + "Wait " * 100_000,
    ],
)
@pytest.mark.slow  # asserts wall-clock time
def test_new_fallbacks_are_fast_on_large_input(text: str) -> None:
    start = time.perf_counter()
    E.extract_prediction(text)
    E.extract_prediction(text, list_gold=True)
    E.extract_gold(text)
    E.is_list_answer(text)
    assert time.perf_counter() - start < 1.0
