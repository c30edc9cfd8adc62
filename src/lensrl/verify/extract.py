"""Find the answer in a gold string or a model completion: plain string work, no parsing.

This runs in the calling process before anything reaches a worker, so it must be cheap and
linear-time on any input: no regular expression here can backtrack on a megabyte string, and
nothing is parsed, executed or ``eval``-ed. Only the short extracted answer travels to a worker.

Predictions (``extract_prediction``):

1. The last ``\\boxed{...}`` (or ``\\fbox{...}``, or ``\\boxed 5``). Boxed answers that directly
   precede it, separated only by commas, ``and``/``or``, spaces or ``$``, are joined with ``", "``
   (``\\boxed{2}, \\boxed{3}`` reads as ``2, 3``; at most 10 boxes). As in Math-Verify, the
   separator needs a comma, ``and`` or ``or``: ``\\boxed{2} \\boxed{3}`` reads as ``3``. If the
   last ``\\boxed`` is never closed the prediction has no answer: a truncated final answer is
   not an answer.
   Not in strict mode, a clean answer phrase *after* the last box (``... \\boxed{255} ...
   Final Answer: The final answer is $10,455$.``) states the final answer and wins.
2. Not in strict mode, when there is no ``\\boxed`` at all:
   a. GSM8K style: the text after the last ``####`` on its line;
   b. the last "answer is X" / "Answer: X" / "Answer $X$" / "**Final Answer**" phrase (see
      :func:`answer_after_phrase`), read by :func:`clean_answer`: what follows must *be* one
      answer (math, a plain number, ``\\text{}`` or one word, then only words such as units:
      no second value, no negation or hedge, no question), or ``<subject> is <answer>``; a
      correction after it ("wait", "actually", "mistake" ...) cancels it. A phrase that yields
      nothing yields nothing: ``The answer is not 3, it is 5`` has no answer;
   c. the last sentence, when it opens with a conclusion (``Therefore``, ``So``, ``We find
      that`` ...) and states one answer the same way (:func:`final_sentence_answer`), or is
      ``<subject> is $math$`` / ``<label>: $math$``;
   d. a short bare answer: a one-line text of at most ``MAX_BARE_CHARS`` that is one answer
      (``42``, ``1000,99``, ``$x^2$``, ``28 percent``), not a sentence.

With ``list_gold=True`` (the gold answer is a list, :func:`is_list_answer`), boxes at the end
separated by white space alone are joined too (``\\boxed{1}\\boxed{2}`` reads as ``1, 2``), as
long as the last box is not a list itself.

Gold answers (``extract_gold``): the last ``\\boxed{}`` if there is one (so a MATH solution works as
gold), joined with the boxes just before it when at most three words separate them
(``\\boxed{1} papers and \\boxed{2} bins`` is ``1, 2``); else the text after ``####``; else, for a
long text, its answer phrase; else the whole string; ``$...$``, ``\\(...\\)`` and ``\\[...\\]``
around it are removed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lensrl.verify import verdict as R

MAX_TEXT_CHARS = 200_000
"""Longest prediction or gold string looked at (about 50k tokens); longer is ``"input too long"``."""
MAX_ANSWER_CHARS = 1_000
"""Longest extracted answer sent to the parser (MATH answers are far shorter)."""
MAX_NESTING = 20
"""Deepest nesting of ``{ ( [`` accepted in an answer; the LaTeX parser backtracks badly on more."""
MAX_BARE_CHARS = 100
"""Longest whole-text prediction taken as a bare answer when nothing else is found."""

_SEPARATOR_RE = re.compile(
    r"(?:\s|\$|,|;|\\[,;:! ()]|\\q?quad(?![A-Za-z])|\\text\{\s*(?:and|or|,)?\s*\}|and|or)*"
)
_CONNECTOR_RE = re.compile(r"(?<!\\)[,;]|and|or")  # "\\," is a thin space, not a comma
_MAX_GAP = 200  # longest separator between two boxed answers that are read as one list
_MAX_JOINED = 10  # most boxed answers read as one list (Math-Verify joins up to 5)
# "answer is", "Answer:", "answer =", "Answer $9$", and a "Final Answer" heading
# ("**Final Answer**\n$$ 9 $$").
_ANSWER_PHRASE_RE = re.compile(
    r"(?i:answer)\**\s*(?:is\b|:|=)\s*:?\**"
    r"|(?i:final\s+answer)\**\s*:?\**(?=\s*(?:\n|\$|\\\[|\\\())"
    r"|(?i:answer)(?=[ \t]*(?:\$|\\\[|\\\())"
)
_INLINE_MATH_RE = re.compile(r"\$\$?([^$]{1,2000})\$\$?")
_MATH_OPEN = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"))
_DISPLAY = (("$$", "$$"), ("\\[", "\\]"))
# A plain number in prose: digits with thousands separators ("1,000", "1 000" is not taken: a space
# also separates list items), a decimal part after "." or ",", or a fraction "3/4". Bounded
# repetitions only, so the search stays linear.
_NUMBER_RE = re.compile(
    r"(?<![\w.,])[-\u2212]?(?:\d{1,3}(?:,\d{3})+(?:\.\d{1,30})?|\d{1,30}(?:[.,]\d{1,30})?"
    r"(?:/\d{1,30})?)(?![\d])"
)
# The same, at the start of an answer, and only when it is a whole token: "3x+4", "3^2", "f(3)",
# "3.5.1" are not the number 3. A currency sign before it and a percent sign after it belong to it.
_LEAD_NUMBER_RE = re.compile(
    r"[-\u2212]?(?:\\?\$)?(?:\d{1,3}(?:,\d{3})+(?:\.\d{1,30})?|\d{1,30}(?:[.,]\d{1,30})?"
    r"|\.\d{1,30})(?:/\d{1,30})?(?:\s?(?:\\?%|\\?\$|\u20ac|\u00a3))?(?![\w(^!'\[{]|[.,/]\w)"
)
_THOUSANDS_NUMBER_RE = re.compile(r"-?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d{1,30})?")
_WORD_RE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}")  # a word, not a LaTeX command's name
_TEXT_RE = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]{0,200})\}")
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
_CONTROL_RE = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")  # form feed, vertical tab: spaces
_WRAPPERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))


@dataclass(frozen=True)
class Extraction:
    """An extracted answer, or ``answer=None`` with the reason nothing usable was found."""

    answer: str | None
    reason: str = ""


def _brace_argument(text: str, start: int) -> tuple[str | None, int]:
    """Read ``{...}`` starting at ``text[start] == "{"``; return (content, end) or (None, -1).

    ``\\{`` and ``\\}`` are escaped characters, not grouping, so ``\\boxed{\\{1,2\\}}`` works.
    """
    depth = 0
    i = start
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i], i + 1
        i += 1
    return None, -1


def _previous_box(text: str, end: int) -> tuple[int, int] | None:
    """(start, end of the command name) of the last ``\\boxed``/``\\fbox`` starting before ``end``."""
    while end > 0:
        i = max(text.rfind("\\boxed", 0, end), text.rfind("\\fbox", 0, end))
        if i < 0:
            return None
        name_end = i + (6 if text.startswith("\\boxed", i) else 5)
        if name_end < len(text) and text[name_end].isalpha():  # \boxedx is another command
            end = i
            continue
        return i, name_end
    return None


def _box_argument(text: str, i: int) -> tuple[str | None, int]:
    """The argument after a box command ending at ``i``: (content, end) or (None, -1)."""
    while i < len(text) and text[i] in " \t":
        i += 1
    if i < len(text) and text[i] == "{":
        return _brace_argument(text, i)
    j = i
    while j < len(text) and not text[j].isspace() and text[j] not in "$.,;":
        j += 1
    return (text[i:j], j) if j > i else (None, -1)


def last_boxed(text: str) -> Extraction:
    """The last ``\\boxed{}`` with the boxed answers directly before it joined (see module doc)."""
    box = _previous_box(text, len(text))
    if box is None:
        return Extraction(None, R.NO_BOXED)
    content, _ = _box_argument(text, box[1])
    if content is None:
        return Extraction(None, R.UNTERMINATED)
    parts = [content.strip()]
    start = box[0]
    while len(parts) < _MAX_JOINED and (box := _previous_box(text, start)) is not None:
        prev, prev_end = _box_argument(text, box[1])
        gap = (
            text[prev_end:start] if prev is not None and 0 <= start - prev_end <= _MAX_GAP else None
        )
        if gap is None or not _SEPARATOR_RE.fullmatch(gap) or not _CONNECTOR_RE.search(gap):
            break
        parts.append(prev.strip() if prev is not None else "")
        start = box[0]
    return Extraction(", ".join(reversed(parts)), "")


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


def _after_hashes(text: str) -> str | None:
    i = text.rfind("####")
    if i < 0:
        return None
    answer = text[i + 4 :].split("\n", 1)[0]
    return strip_math_delimiters(answer) or None


def _display_math(text: str) -> str | None:
    """The content of ``$$...$$`` or ``\\[...\\]`` at the start of ``text``, if it opens there."""
    for left, right in _DISPLAY:
        if text.startswith(left):
            end = text.find(right, len(left), 4000)
            return (text[len(left) : end].strip() or None) if end > 0 else None
    return None


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


def plain_number(text: str) -> str | None:
    """The first plain number in ``text`` (prose), normalised; None if there is none.

    ``1,000.99€`` -> ``1000.99``; ``1,22`` -> ``1.22`` (a comma followed by other than three
    digits is a decimal comma); ``3/4`` stays a fraction; ``−5`` -> ``-5``. Units and currency
    around the number are simply not part of it.
    """
    found = _NUMBER_RE.search(text)
    return None if found is None else _decimal_comma(found.group())


def _clean_tail(tail: str) -> bool:
    """Whether what follows an answer leaves it the only answer: words (units, a noun phrase)
    and punctuation, but no other number, no mathematics, no hedge, no question. A reason
    ("because ...", "since ...") ends the tail: it justifies the answer, it does not add one."""
    tail = _REASON_RE.split(tail, maxsplit=1)[0]
    tail = _TEXT_RE.sub(lambda m: " " + m.group(1) + " ", tail)
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
    if found is None and (m := _TEXT_RE.match(seg)) is not None:
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
    no_words = not _WORD_RE.search(_TEXT_RE.sub(" w ", sentence))
    if bare and numbers and no_words and "$" not in sentence:
        return strip_math_delimiters(sentence) or None  # bare mathematics
    if split:
        masked = _mask_math(sentence)
        copula = _last(_COPULA_RE, masked)
        if copula is not None:
            subject = masked[: copula.start()]
            # "the number of points that could be in the domain is 19" is fine; "the answer
            # could be 19" is a hedge: a modal counts only right before the copula.
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
    """The answer after the last "answer is" / "Answer:" phrase (module docstring, 2b), or None
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


def _last_boxes_of_list(text: str, first: Extraction) -> Extraction:
    """For a list gold: the boxes at the end joined, separated by white space alone too."""
    if first.answer is None or is_list_answer(first.answer):
        return first
    box = _previous_box(text, len(text))
    assert box is not None
    parts: list[str] = []
    start = box[0]
    while len(parts) < _MAX_JOINED and (box := _previous_box(text, start)) is not None:
        prev, prev_end = _box_argument(text, box[1])
        if prev is None or not 0 <= start - prev_end <= _MAX_GAP:
            break
        if not _SEPARATOR_RE.fullmatch(text[prev_end:start]) or is_list_answer(prev):
            break
        parts.append(prev.strip())
        start = box[0]
    if not parts:
        return first
    return Extraction(", ".join([*reversed(parts), first.answer]), "")


def _top_level_comma(text: str) -> bool:
    depth = 0
    for i, c in enumerate(text):
        if c in "{([":
            depth += 1
        elif c in "})]":
            depth -= 1
        elif c == "," and depth == 0 and not text.startswith("\\!", i + 1):
            return True
    return False


def is_list_answer(answer: str) -> bool:
    """Whether an answer is a list of several values: ``1, 2``, ``\\{1,2\\}``, ``(1, 2)``.

    A number with thousands separators (``1,000``, ``1{,}000``) is one value.
    """
    s = strip_math_delimiters(answer).replace(" ", "")
    if re.fullmatch(r"[+-]?\d{1,3}(?:(?:,|\{,\}|,\\!)\d{3})+(?:\.\d+)?", s):
        return False
    for left, right in (("\\{", "\\}"), ("(", ")"), ("[", "]")):
        if s.startswith(left) and s.endswith(right):
            s = s[len(left) : -len(right)]
            break
    return _top_level_comma(s)


def _bare(text: str, list_gold: bool) -> str | None:
    """A short one-line completion that is an answer by itself (:func:`clean_answer` without
    the subject split): a number (``1000,99`` read with a decimal comma, ``28 percent``),
    mathematics, or one word; None for a sentence (``I tried 18 and failed``)."""
    bare = text.strip()
    if not bare or "\n" in bare or len(bare) > MAX_BARE_CHARS or _CONCLUSION_RE.match(bare):
        return None  # a conclusion is a sentence: final_sentence_answer has read it
    return clean_answer(bare, split=False, list_gold=list_gold, whole=True)


def extract_prediction(text: str, *, strict: bool = False, list_gold: bool = False) -> Extraction:
    """The answer a completion gives; see the module docstring for the order of fallbacks.

    ``list_gold``: the gold answer is a list (:func:`is_list_answer`), so boxes at the end
    separated by white space only are read as one answer.
    """
    if "\\boxed" in text or "\\fbox" in text:
        boxed = last_boxed(text)
        if list_gold:
            boxed = _last_boxes_of_list(text, boxed)
        if not strict and boxed.answer is not None:
            # "... \\boxed{255} ... Final Answer: The final answer is $10,455$.": a clean
            # answer phrase after the last box states the final answer.
            box = _previous_box(text, len(text))
            end = _box_argument(text, box[1])[1] if box is not None else -1
            later = answer_after_phrase(text[end:], list_gold=list_gold) if end > 0 else None
            if later:
                return Extraction(later)
        return boxed if boxed.answer or boxed.answer is None else Extraction(None, R.NO_ANSWER)
    if strict:
        return Extraction(None, R.NO_BOXED)
    hashes = _after_hashes(text)
    if hashes:
        return Extraction(hashes)
    found = answer_after_phrase(text, list_gold=list_gold)
    found = found or final_sentence_answer(text, list_gold=list_gold) or _bare(text, list_gold)
    return Extraction(found, "" if found else R.NO_ANSWER)


def _gold_boxes(text: str) -> str | None:
    """The gold's boxed answer: its last box, joined with the boxes just before it when only
    separators or at most three words lie between (``\\boxed{1} papers and \\boxed{2} bins`` is
    ``1, 2``; a solution's earlier boxes, further away, are not)."""
    box = _previous_box(text, len(text))
    if box is None:
        return None
    content, _ = _box_argument(text, box[1])
    if content is None:
        return None
    parts = [content.strip()]
    start = box[0]
    while len(parts) < _MAX_JOINED and (box := _previous_box(text, start)) is not None:
        prev, prev_end = _box_argument(text, box[1])
        if prev is None or not 0 <= start - prev_end <= 80:
            break
        gap = _TEXT_RE.sub(lambda m: " " + m.group(1) + " ", text[prev_end:start])
        words = [w for w in re.findall(r"[A-Za-z]+", gap) if w not in ("quad", "qquad")]
        if re.search(r"[^\sA-Za-z$,;()\\]", gap) or len(words) > 3:
            break
        parts.append(prev.strip())
        start = box[0]
    return ", ".join(reversed(parts))


def extract_gold(text: str) -> str | None:
    """The gold answer inside ``text`` (bare, ``$...$``, ``\\boxed{}`` or ``#### x``), or None.

    A long gold without a box (a whole worked solution) is read like a prediction's answer
    phrase (``Final Answer: The final answer is $28\\%$.``), without the correction check: the
    gold is the reference, whatever it says afterwards."""
    if "\\boxed" in text or "\\fbox" in text:
        answer = _gold_boxes(text)
    else:
        answer = _after_hashes(text)
        if answer is None and len(text) > MAX_BARE_CHARS:
            answer = answer_after_phrase(text, corrections=False)
        if answer is None:
            answer = strip_math_delimiters(text)
    return answer.strip() if answer and answer.strip() else None


def nesting_depth(text: str) -> int:
    """Deepest nesting of ``{``, ``(`` and ``[`` (escaped or not): a cheap complexity bound."""
    depth = deepest = 0
    for c in text:
        if c in "{([":
            depth += 1
            deepest = max(deepest, depth)
        elif c in "})]":
            depth = max(depth - 1, 0)
    return deepest


def check_answer(answer: str) -> str | None:
    """Why ``answer`` must not reach the parser (a reason from :data:`REASONS`), or None."""
    if len(answer) > MAX_ANSWER_CHARS:
        return R.TOO_LONG
    if _CONTROL_RE.search(answer):
        return R.INVALID_CHARS
    if nesting_depth(answer) > MAX_NESTING:
        return R.TOO_NESTED
    return None
