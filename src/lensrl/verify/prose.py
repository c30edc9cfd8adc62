"""The prose rules of answer extraction: a prediction without ``\\boxed`` that states its answer.

Rules 2b to 2d of :mod:`lensrl.verify.extract` (whose docstring gives the order in which they
are tried): the answer after the last answer phrase (:func:`answer_after_phrase`), the answer
stated by a concluding last sentence (:func:`final_sentence_answer`), and a short bare answer
(:func:`bare_answer`). Each reads what follows with :func:`clean_answer`, which takes an answer
only when the text *is* one answer: no second value, hedge, negation, question or later
correction. As in the rest of extraction, every regular expression is bounded, so the work stays
linear on any input.
"""

from __future__ import annotations

import re

MAX_BARE_CHARS = 100
"""Longest whole-text prediction taken as a bare answer when nothing else is found."""

# "answer is", "Answer:", "answer =", "Answer $9$", and a "Final Answer" heading
# ("**Final Answer**\n$$ 9 $$").
_ANSWER_PHRASE_RE = re.compile(
    r"(?i:answer)\**\s*(?:is\b|:|=)\s*:?\**"
    r"|(?i:final\s+answer)\**\s*:?\**(?=\s*(?:\n|\$|\\\[|\\\())"
    r"|(?i:answer)(?=[ \t]*(?:\$|\\\[|\\\())"
)
_INLINE_MATH_RE = re.compile(r"\$\$?([^$]{1,2000})\$\$?")
_MATH_OPEN = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"))
# A plain number at the start of an answer: digits with thousands separators ("1,000"; "1 000" is
# not taken: a space also separates list items), a decimal part after "." or ",", or a fraction
# "3/4", with bounded repetitions only, so the search stays linear. Only a whole token: "3x+4",
# "3^2", "f(3)", "3.5.1" are not the number 3. A currency sign before it and a percent sign after
# it belong to it.
_LEAD_NUMBER_RE = re.compile(
    r"[-\u2212]?(?:\\?\$)?(?:\d{1,3}(?:,\d{3})+(?:\.\d{1,30})?|\d{1,30}(?:[.,]\d{1,30})?"
    r"|\.\d{1,30})(?:/\d{1,30})?(?:\s?(?:\\?%|\\?\$|\u20ac|\u00a3))?(?![\w(^!'\[{]|[.,/]\w)"
)
_THOUSANDS_NUMBER_RE = re.compile(r"-?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d{1,30})?")
_WORD_RE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}")  # a word, not a LaTeX command's name
TEXT_RE = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]{0,200})\}")
# Words that make what follows an answer phrase something other than one answer: a negation, a
# hedge between values, a range, a condition, an arithmetic word, a correction.
_HEDGE_RE = re.compile(
    r"(?i)\b(?:not|no|nor|or|and|but|if|unless|except|than|maybe|perhaps|probably|possibly|"
    r"likely|approx(?:imately)?|about|around|roughly|nearly|almost|times|plus|minus|over|"
    r"divided|multiplied|squared|cubed|more|less|fewer|greater|smaller|larger|least|most|"
    r"wrong|incorrect|either|neither|between|to|through|until|guess|think|thought|tried|unsure|"
    r"wait|actually|instead|rather|where|when|whenever|assuming|assume|suppose|let|check|"
    r"isn|aren|cannot|can|don|doesn|won|could|might|would|should|may|in\s+case|cases|case\s+\w{1,3}|otherwise|only|"
    r"seems?|seemed|too|candidates?|possible|options?|try|attempt|estimated?|initial|"
    r"factorial|doubled|tripled|halved|digits?|mod|modulo)\b"
)
_REASON_RE = re.compile(r"(?i)\b(?:because|since|given\s+that|due\s+to)\b")
_ARITHMETIC_RE = re.compile(r"\s*\(?\s*\d{1,30}(?:\s*[-+*/\u00d7\u00b7]\s*\(?\d{1,30}\)?){1,20}\s*\)?\s*")
_MODAL_RE = re.compile(r"(?i)\b(?:can|could|might|would|should|may|will)\b")
# Fillers between an answer phrase and the answer ("The answer is simply 3").
_LEAD_FILLER_RE = re.compile(
    r"(?i)(?:[\s:=*,]|(?:simply|just|exactly|then|therefore|thus|hence|so|now|indeed|clearly|"
    r"equal\s+to|equals|given\s+by)\b)*"
)
# A conclusion that opens the last sentence of a solution without \boxed or an answer phrase.
_CONCLUSION_RE = re.compile(
    r"(?i)(?:(?:therefore|thus|hence|so|finally|consequently|overall|in\s+conclusion)\b,?\s*)+"
    r"(?:(?:we\s+(?:find|get|obtain|conclude|see|have)|it\s+follows)(?:\s+that)?\b,?\s*)?"
    r"|(?i:we\s+(?:find|get|obtain|conclude)(?:\s+that)?\b,?\s*)"
)
_RESTART_RE = re.compile(r"(?<=\s)(?:Therefore|Thus|Hence|So|Finally)\b")
_THERE_IS_RE = re.compile(r"(?i)there\s+(?:is|are)\s+")
# Where "<subject> is <answer>" splits: the last copula, "=", "by" or a label's colon.
_COPULA_RE = re.compile(
    r"(?i)\b(?:is|are|was|were|equals|becomes|be|by|has|have|had|gets|needs|costs|weighs|"
    r"takes|earns|pays|spends|makes|receives|sells|buys|reads|saves)\b|=|:"
)
# What a model writes after it is done: a chat template's next turn, the Minerva sign-off.
_SPECIAL_TOKEN_RE = re.compile(r"<\|[A-Za-z_]{1,30}\|>")
_HOPE_RE = re.compile(r"(?i)I\s+hope\s+(?:it|this)\s+is\s+correct")
_SIGN_OFF_RE = re.compile(r"(?i)\s*I\s+hope\s+(?:it|this)\s+is\s+correct\W{0,3}$")
# A correction after the answer's sentence makes that answer no longer the final one.
_CORRECTION_RE = re.compile(
    r"(?i)\b(?:wait|actually|mistake|wrong|incorrect|correction|recheck|re-check|double-check|"
    r"reconsider|oops|instead|however|not\s+(?:correct|right)|hold\s+on|hmm+|sorry|scratch|"
    r"never\s*mind|redo|second\s+thought|revised|updated|rather)\b"
    r"|\?|(?:^|[.!:;\n])\s*(?:no|nope|or|but)\b"
)
# A full stop (not an ellipsis: "3... or not" goes on) or a line break. Not "!" ("3! = 6" is a
# factorial) and not ";" ("$3$; no, $4$" is one sentence).
_SENTENCE_END_RE = re.compile(r"(?<!\.)\.(?=\s|$)|\n")
_WRAPPERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))


def strip_math_delimiters(text: str) -> str:
    """``$x$``, ``$$x$$``, ``\\(x\\)``, ``\\[x\\]`` -> ``x``; also drops a final full stop."""
    s = text.strip()
    for _ in range(3):
        for left, right in _WRAPPERS:
            inner = s[len(left) : -len(right)]
            if (
                len(s) >= len(left) + len(right)
                and s.startswith(left)
                and s.endswith(right)
                and right not in inner
            ):
                s = inner.strip()
                break
        else:
            break
    if s.endswith(".") and not s[:-1].rstrip().endswith("."):
        s = s[:-1].rstrip()
    return s


def _leading_math(text: str) -> tuple[str, int] | None:
    """(content, end) of the math that opens ``text``, or None: display math (``$$ $$``,
    ``\\[ \\]``) may hold line breaks, inline math (``$ $``, ``\\( \\)``) may not, as in
    Math-Verify; an escaped ``\\$`` inside does not close it."""
    for left, right in _MATH_OPEN:
        if text.startswith(left):
            end = text.find(right, len(left), 4000)
            while end > 0 and text[end - 1] == "\\" and right == "$":
                end = text.find(right, end + 1, 4000)
            if end < 0:
                return None
            content = text[len(left) : end]
            if not content.strip() or (right in ("$", "\\)") and "\n" in content):
                return None
            return content.strip(), end + len(right)
    return None


def _decimal_comma(number: str) -> str:
    """``1,000.5`` -> ``1000.5``; ``1,22`` and ``1000,99`` -> a decimal point; ``−`` -> ``-``."""
    number = re.sub(r"\\?\$|\u20ac|\u00a3", "", number.replace("\u2212", "-")).strip()
    digits = number.rstrip(" \\%")
    if _THOUSANDS_NUMBER_RE.fullmatch(digits):
        return number.replace(",", "")
    return number.replace(",", ".", 1) if digits.count(",") == 1 else number


def _clean_tail(tail: str) -> bool:
    """Whether what follows an answer leaves it the only answer: words (units, a noun phrase)
    and punctuation, but no other number, no mathematics, no hedge, no question. A reason
    ("because ...", "since ...") ends the tail: it justifies the answer, it does not add one."""
    tail = _REASON_RE.split(tail, maxsplit=1)[0]
    tail = TEXT_RE.sub(lambda m: " " + m.group(1) + " ", tail)
    if re.search(r"[\d$\\=<>+*/^_?{}\[\]|()\"`&#@~]|\s-", tail):
        return False
    if re.search(r"(?<![A-Za-z'])[b-fi-knp-rt-z](?![A-Za-z'])", tail):
        return False  # a lone letter is a variable ("3 x" is 3x), unless a unit: m, g, s, h, l
    return _HEDGE_RE.search(tail) is None


def _last(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    found = None
    for found in pattern.finditer(text):  # noqa: B007 (the last one is wanted)
        pass
    return found


def _mask_math(text: str) -> str:
    """``text`` with the inside of each ``$...$`` blanked (same length), to search prose only."""
    return _INLINE_MATH_RE.sub(lambda m: "$" + " " * (len(m.group()) - 2) + "$", text)


def clean_answer(
    segment: str,
    *,
    numbers: bool = True,
    split: bool = True,
    list_gold: bool = False,
    whole: bool = False,
    bare: bool = True,
) -> str | None:
    """The answer that ``segment`` (what follows an answer phrase) *is*, or None.

    It is the math (inline or display), plain number (when ``numbers``), ``\\text{...}`` or
    single word that opens the segment, followed only by a clean tail (:func:`_clean_tail`:
    ``25 apples`` is 25, ``3 or 4``, ``3, not 4``, ``3?`` are nothing). A segment of bare
    mathematics without words is taken whole (``x >= 5``, ``(2, 3)``; not with ``bare=False``).
    Else, with ``split``,
    ``<subject> is <answer>`` gives the answer when the subject has no digit and no hedge (``the
    largest $n$ is 34``), or is a computation in plain numbers (``12 + 1 = 13``).
    """
    segment = segment.replace("**", " ")  # Markdown bold: "**3**"
    seg = segment[_LEAD_FILLER_RE.match(segment).end() :]  # type: ignore[union-attr]
    seg = seg.strip()
    if not seg or _HEDGE_RE.match(seg):
        return None
    found: tuple[str, int] | None = _leading_math(seg)
    m = _LEAD_NUMBER_RE.match(seg) if numbers else None
    if found is None and m is not None and not (list_gold and "," in m.group()):
        found = (_decimal_comma(m.group()), m.end())
    if found is None and (m := TEXT_RE.match(seg)) is not None:
        found = (m.group(), m.end())
    if found is None and (m := re.match(r"[A-Za-z]{1,20}(?=\W*$)", seg)) is not None:
        found = (m.group(), m.end())  # one word: "B", "Monday", "yes"
    if found is not None:
        tail = seg[found[1] :]
        if not whole:
            tail = _SENTENCE_END_RE.split(tail, maxsplit=1)[0]
        if _clean_tail(tail):
            return found[0]
    sentence = _SENTENCE_END_RE.split(seg, maxsplit=1)[0].strip()
    no_words = not _WORD_RE.search(TEXT_RE.sub(" w ", sentence))
    if bare and numbers and no_words and "$" not in sentence:
        return strip_math_delimiters(sentence) or None  # bare mathematics
    if split:
        return _after_subject(sentence, numbers=numbers, list_gold=list_gold)
    return None


def _after_subject(sentence: str, *, numbers: bool, list_gold: bool) -> str | None:
    """The answer of ``<subject> is <answer>`` (:func:`clean_answer`'s last rule), or None."""
    masked = _mask_math(sentence)
    copula = _last(_COPULA_RE, masked)
    if copula is None:
        return None
    subject = masked[: copula.start()]
    # "the number of points that could be in the domain is 19" is fine; "the answer could be 19"
    # is a hedge: a modal counts only right before the copula.
    hedged = _HEDGE_RE.search(_MODAL_RE.sub(" ", subject)) or re.search(
        _MODAL_RE.pattern + r"\s*$", subject
    )
    # Prose or named math only: code (``exec("x = 3")``) has quotes and brackets.
    code_like = re.search(r"[\d?\"`()\[\]{}_\\]", subject)
    named = not code_like and not hedged and not re.search(r"\d", sentence[: copula.start()])
    # "So, 12 + 1 = 13": a computation in plain numbers whose result is stated.
    computed = copula.group() == "=" and _ARITHMETIC_RE.fullmatch(sentence[: copula.start()])
    if named or computed:
        rest = sentence[copula.end() :]
        return clean_answer(rest, numbers=numbers, split=False, list_gold=list_gold)
    return None


def _cut_at_end_of_turn(text: str) -> str:
    """The completion up to a chat template's next-turn token (what follows is not its answer)."""
    found = _SPECIAL_TOKEN_RE.search(text)
    return text[: found.start()] if found else text


def answer_after_phrase(
    text: str, *, corrections: bool = True, list_gold: bool = False
) -> str | None:
    """The answer after the last "answer is" / "Answer:" phrase (rule 2b of :mod:`lensrl.verify.extract`), or None
    when what follows the phrase is not one answer or, with ``corrections``, when a correction
    ("wait", "actually", "mistake" ...) comes after it."""
    # Look only at the tail: an answer phrase is near the end, and this bounds the regex work.
    tail = _cut_at_end_of_turn(text[-4000:])
    found = None
    for m in _ANSWER_PHRASE_RE.finditer(tail):
        found = m
    if found is None:
        return None
    after = tail[found.end() :].lstrip(" \t*:")
    if after.startswith("\n"):
        after = after.lstrip()
        if _leading_math(after) is None:
            return None
    answer = clean_answer(after, list_gold=list_gold)
    if answer is None:
        return None
    if corrections:
        rest = _SENTENCE_END_RE.split(after, maxsplit=1)
        math = _leading_math(after)
        later = after[math[1] :] if math else (rest[1] if len(rest) > 1 else "")
        # Minerva's sign-off closes the answer: a note after it is not a correction of it.
        later = _HOPE_RE.split(later, maxsplit=1)[0]
        if _CORRECTION_RE.search(later):
            return None
    return answer


def final_sentence_answer(text: str, *, list_gold: bool = False) -> str | None:
    """The answer stated by the last sentence of a solution with no box and no answer phrase.

    The sentence must open with a conclusion (``Therefore``, ``Thus``, ``So``, ``We find
    that`` ...), and then be read like an answer phrase (:func:`clean_answer`): ``So, the ordered
    pair $(x, y)$ is $(7, 6)$.``; ``Therefore $x \\geq 5$ is the solution.``. Without a conclusion
    word, only a sentence ``<subject> is $math$`` or ``<label>: $math$`` counts (``The sum is
    $A + B$``): a plain number in such a sentence (``She has 18 dollars left``) is not an answer.
    """
    body = _SIGN_OFF_RE.sub("", _cut_at_end_of_turn(text[-4000:]).rstrip())
    body = body.rstrip().rstrip(".").rstrip()
    cut = max(body.rfind(". "), body.rfind(".\n"), body.rfind("\n"), body.rfind("! "))
    sentence = body[cut + 1 :].strip()
    if not sentence or _ANSWER_PHRASE_RE.search(sentence):
        return None  # an answer phrase there has already decided
    # Flattened text runs sentences together ("P(A) = 2/3 Therefore, ..."): a capitalised
    # conclusion word starts the last sentence too.
    restart = _last(_RESTART_RE, sentence)
    if restart is not None:
        sentence = sentence[restart.start() :]
    conclusion = _CONCLUSION_RE.match(sentence)
    if conclusion is not None:
        sentence = sentence[conclusion.end() :]
        there = _THERE_IS_RE.match(sentence)
        if there is not None:
            sentence = sentence[there.end() :]
        # No bare formula taken whole here: "Therefore x + 3 = 5." is a step, not an answer.
        return clean_answer(sentence, list_gold=list_gold, bare=False)
    if _leading_math(sentence) is not None:
        return None  # a bare formula closing a derivation is a step, not a stated answer
    return clean_answer(sentence, numbers=False, list_gold=list_gold)


def bare_answer(text: str, list_gold: bool) -> str | None:
    """A short one-line completion that is an answer by itself (:func:`clean_answer` without
    the subject split): a number (``1000,99`` read with a decimal comma, ``28 percent``),
    mathematics, or one word; None for a sentence (``I tried 18 and failed``)."""
    bare = text.strip()
    if not bare or "\n" in bare or len(bare) > MAX_BARE_CHARS or _CONCLUSION_RE.match(bare):
        return None  # a conclusion is a sentence: final_sentence_answer has read it
    return clean_answer(bare, split=False, list_gold=list_gold, whole=True)


