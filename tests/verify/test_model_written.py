"""Agreement with Math-Verify on what a real model writes (tests/verify/fixtures/).

``smollm2_completions.jsonl`` holds 300 completions of SmolLM2-135M-Instruct at temperature 1
(150 built-in problems, 150 GSM8K-style word problems; made by ``make_smollm2_completions.py`` in
the same folder, seed and settings there), each with Math-Verify's own verdict
(``verify(parse(gold), parse(completion))``, default extractors) computed once by that script.
``lensrl.verify`` must never say "correct" where Math-Verify does not, and may differ from it only
on the reviewed rows of :data:`MATH_VERIFY_READS_A_NON_ANSWER`: completions where Math-Verify's
default extractors take a number the model did not state as its answer (docs/verifier.md lists
them with their text). On every other row the two agree.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lensrl.verify import VerifierPool

FIXTURE = Path(__file__).parent / "fixtures" / "smollm2_completions.jsonl"
ROWS = [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]
# Read by hand: Math-Verify says "correct", but the text states no answer (or not that one).
MATH_VERIFY_READS_A_NON_ANSWER = {
    "builtin/L5/376+158": "the restated question '376+158', evaluated",
    "builtin/L1/52+3": "the restated question '52+3', evaluated",
    "word/37": "'the answer is 4*(1 box/apple**2 = 2 x 4 = 8 apples.)': a number inside garbage",
    "word/46": "the list marker '5.' that starts the next, unfinished step",
    "word/54": "'the worthless 12', a stray number mid-sentence",
    "word/84": "'one of the 3 stickers left', a stray number",
    "word/88": "'2 \\sqrt{15}= 2 \\sqrt{15} + 11...', a broken formula",
    "word/120": "'It must be multiplied by 8, so does' (cut off)",
    "word/127": "'10 * 4 = 40 boxes ...', a step, with more steps after it",
}
# Without strict: "So, 12 + 1 = 13 in this scenario." is a stated answer; strict wants a box.
STRICT_ONLY = {"builtin/L1/12+1": "the answer is stated in prose, not boxed"}


def test_fixture_is_what_the_script_makes() -> None:
    assert len(ROWS) == 300
    assert {r["source"] for r in ROWS} == {"builtin", "word"}
    assert all(isinstance(r["math_verify"], bool) and r["completion"] for r in ROWS)


@pytest.mark.parametrize("strict", [False, True])
def test_agreement_with_math_verify(pool: VerifierPool, strict: bool) -> None:
    got = pool.verify_batch([r["gold"] for r in ROWS], [r["completion"] for r in ROWS],
                            strict=strict)
    differ = [(r["id"], r["math_verify"], v) for r, v in zip(ROWS, got, strict=True)
              if (v.correct is True) != r["math_verify"]]
    print(f"strict={strict}: {len(ROWS) - len(differ)}/{len(ROWS)} agree; differ: {differ}")
    false_correct = [d for d in differ if d[2].correct is True]
    assert not false_correct, false_correct
    known = {**MATH_VERIFY_READS_A_NON_ANSWER, **(STRICT_ONLY if strict else {})}
    assert {d[0] for d in differ} == set(known), differ
    assert all(v.correct is not None for v in got)  # the golds are plain integers


@pytest.mark.slow
def test_stored_reference_is_math_verify() -> None:
    """The stored verdicts are Math-Verify's (recomputed: slow, and parse_expr runs here)."""
    from tests.verify.fixtures.make_smollm2_completions import math_verify_verdict

    assert [math_verify_verdict(r["gold"], r["completion"]) for r in ROWS] == [
        r["math_verify"] for r in ROWS
    ]
