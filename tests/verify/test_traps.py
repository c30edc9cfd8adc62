"""Prose that merely contains the gold is never "correct" (docs/verifier.md §2).

Every row is a completion that mentions the gold ``3`` (or holds it inside another value) without
stating it as the one final answer. Each is judged in both modes; none may be ``correct is True``.
A false "correct" is a reward a policy can learn to collect.
"""

from __future__ import annotations

import pytest

from lensrl.verify import VerifierPool

TRAPS: dict[str, list[str]] = {
    "negation": [
        "The answer is not 3, it is 5.",
        "The answer is not $3$.",
        "The answer isn't 3.",
        "Answer: not 3",
        "So the answer is definitely not 3; it must be 7.",
        "Therefore the result is not 3.",
        "The final answer is: no, not 3 but 8",
    ],
    "hedge": [
        "The answer is 3 or 4.",
        "The answer is $3$ or $4$.",
        "The answer is between 3 and 4.",
        "The answer is either 3 or 5.",
        "The answer is probably 3.",
        "The answer is 3?",
        "The answer is about 3.",
        "The answer is maybe 3, maybe 4.",
        "The answer is at least 3.",
        "The answer is 3, 4 or 5.",
        "Answer: 3 to 4",
        "So the answer could be 3.",
        "The answer is less than 3.",
        "The answer is 3... or not.",
        "The final answer is 3 in case A.",
        "Thus, 3 seems too small.",
        "Therefore, 3 is the smallest candidate.",
    ],
    "expression containing the number": [
        "So the answer is x+3 where x=2.",
        "The answer is 3x+4.",
        "The answer is f(3).",
        "The answer is $3x+4$.",
        "The answer is 3^2.",
        "The answer is 3.5.",
        "The answer is 33.",
        "The answer is 3 times the width.",
        "The answer is \\boxed{x+3}",
        "The answer is 3! = 6.",
        "The answer is 3 x",
        "The answer is 3 factorial.",
        "The answer is 3 per cent of x.",
        "Therefore, x + 3 = 3.",
    ],
    "later correction": [
        "I first thought 3, but the answer is 4.",
        "The answer is 3. Wait, actually it is 4.",
        "The answer is 3. Hmm, no, that is a mistake: it should be 6.",
        "The answer is 3.\nActually, re-checking the sum gives 5.",
        "Answer: 3. However, I made an error, the answer is 9.",
        "The answer is 4, not 3.",
        "The answer is $3$; no, $4$.",
        "The answer is 3. No, 4.",
        "The answer is 3. Or maybe 4.",
        "The answer is 3. Hold on, that's not right.",
        "The answer is 3\nNo, it is 4",
    ],
    "box beside a stray number": [
        "We tried 3 first. \\boxed{4}",
        "\\boxed{4} (3 was a typo)",
        "The answer is 3, so \\boxed{5}.",
        "3 \\boxed{7}",
        "\\boxed{3} or \\boxed{4}",
        "\\boxed{3}, \\boxed{4}",
    ],
    "code or paths": [
        "The answer is `open('/tmp/pytest-3/x')`.",
        "The answer is /tmp/pytest-of-root/pytest-3/test0/pwned",
        "The answer is __import__('os').system('touch /tmp/pytest-3/pwned')",
        "The answer is exec(\"x = 3\")",
        "Answer: print(3)",
        "The answer is os.path.join('a', '3')",
        "The answer is 3.txt",
        "Answer: 3 && echo",
        "The answer is 3 # comment",
    ],
    "no answer phrase": [
        "I tried 3 and it failed.",
        "She has 3 dollars left, or maybe 4.",
        "Let x be 3. Then we are done.",
        "If the answer were 3, the sum would be odd.",
        "Step 3: add the numbers.",
        "We need 3 more steps before we know.",
    ],
}
ROWS = [(family, text) for family, texts in TRAPS.items() for text in texts]


def test_the_table_is_large_enough() -> None:
    assert len(ROWS) >= 40 and all(len(t) >= 5 for t in TRAPS.values())


@pytest.mark.parametrize("strict", [False, True])
def test_no_trap_is_correct(pool: VerifierPool, strict: bool) -> None:
    got = pool.verify_batch(["3"] * len(ROWS), [t for _, t in ROWS], strict=strict)
    correct = [(row, v) for row, v in zip(ROWS, got, strict=True) if v.correct is not False]
    assert not correct, correct


def test_the_same_phrasings_still_read_a_plain_answer(pool: VerifierPool) -> None:
    """The guard is not "never read prose": stated answers still count."""
    plain = [
        "The answer is 3.",
        "The answer is $3$.",
        "Answer: 3 apples",
        "The answer is 3, because 1 + 2 = 3.",
        "I first thought 4, but the answer is 3.",
        "Therefore, the number of apples is 3.",
        "So the final answer is 3. I hope it is correct.",
        "The answer is \\boxed{3}",
        "So Ana has 3 apples.",
        "The answer is **3**.",
        "Answer: 3 cm",
        "So, 1 + 2 = 3 in this case.",
    ]
    got = pool.verify_batch(["3"] * len(plain), plain)
    assert [v.correct for v in got] == [True] * len(plain), got
