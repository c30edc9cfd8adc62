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
2. Not in strict mode, when there is no ``\\boxed`` at all:
   a. GSM8K style: the text after the last ``####`` on its line;
   b. the last "answer is X" / "Answer: X" / "**Final Answer**" phrase (see
      :func:`answer_after_phrase`): display math right after it (``$$ 9 $$``, ``\\[ 9 \\]``, also
      on the next line); else, in the rest of its sentence, the last ``$...$``, unless it holds
      no digit and a plain number follows it (``The largest $n$ is 34.`` gives ``34``); a sentence
      with words and no math gives its first plain number (:func:`plain_number`: thousands
      separators, units and currency dropped, a decimal comma read where unambiguous); a
      sentence of bare mathematics (``x >= 5``, ``3/4``) is taken whole;
   c. a short bare answer: the whole text if it is one line of at most ``MAX_BARE_CHARS``.

With ``list_gold=True`` (the gold answer is a list, :func:`is_list_answer`), boxes at the end
separated by white space alone are joined too (``\\boxed{1}\\boxed{2}`` reads as ``1, 2``), as
long as the last box is not a list itself.

Gold answers (``extract_gold``): the last ``\\boxed{}`` if there is one (so a MATH solution works as
gold), else the text after ``####``, else the whole string; ``$...$``, ``\\(...\\)`` and ``\\[...\\]``
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
    r"(?:\s|\$|,|;|\\[,;:! ]|\\q?quad(?![A-Za-z])|\\text\{\s*(?:and|or|,)?\s*\}|and|or)*"
)
_CONNECTOR_RE = re.compile(r"(?<!\\)[,;]|and|or")  # "\\," is a thin space, not a comma
_MAX_GAP = 200  # longest separator between two boxed answers that are read as one list
_MAX_JOINED = 10  # most boxed answers read as one list (Math-Verify joins up to 5)
# "answer is", "Answer:", "answer =", and a "Final Answer" heading ("**Final Answer**\n$$ 9 $$").
_ANSWER_PHRASE_RE = re.compile(
    r"(?i:answer)\**\s*(?:is|:|=)\s*:?\**|(?i:final\s+answer)\**\s*:?\**(?=\s*(?:\n|\$\$|\\\[))"
)
_INLINE_MATH_RE = re.compile(r"\$\$?([^$]{1,2000})\$\$?")
_DISPLAY = (("$$", "$$"), ("\\[", "\\]"))
# A plain number in prose: digits with thousands separators ("1,000", "1 000" is not taken: a space
# also separates list items), a decimal part after "." or ",", or a fraction "3/4". Bounded
# repetitions only, so the search stays linear.
_NUMBER_RE = re.compile(
    r"(?<![\w.,])[-\u2212]?(?:\d{1,3}(?:,\d{3})+(?:\.\d{1,30})?|\d{1,30}(?:[.,]\d{1,30})?"
    r"(?:/\d{1,30})?)(?![\d])"
)
_WORD_RE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}")  # a word, not a LaTeX command's name
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
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


def plain_number(text: str) -> str | None:
    """The first plain number in ``text`` (prose), normalised; None if there is none.

    ``1,000.99€`` -> ``1000.99``; ``1,22`` -> ``1.22`` (a comma followed by other than three
    digits is a decimal comma); ``3/4`` stays a fraction; ``−5`` -> ``-5``. Units and currency
    around the number are simply not part of it.
    """
    found = _NUMBER_RE.search(text)
    if found is None:
        return None
    number = found.group().replace("\u2212", "-")
    if re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?", number):
        return number.replace(",", "")
    return number.replace(",", ".")


def answer_after_phrase(text: str) -> str | None:
    """The answer after the last "answer is" / "Answer:" phrase (module docstring, 2b)."""
    # Look only at the tail: an answer phrase is near the end, and this bounds the regex work.
    tail = text[-4000:]
    found = None
    for m in _ANSWER_PHRASE_RE.finditer(tail):
        found = m
    if found is None:
        return None
    after = tail[found.end() :].lstrip()
    display = _display_math(after)
    if display is not None:
        return display
    rest = after.split("\n", 1)[0].strip()
    sentence = re.split(r"\.(?:\s|$)", rest, maxsplit=1)[0]
    maths = list(_INLINE_MATH_RE.finditer(sentence))
    if maths:
        last = maths[-1]
        trailing = plain_number(sentence[last.end() :])
        # "The largest $n$ is 34": the math names the unknown, the number after it answers.
        if trailing is not None and not re.search(r"\d", last.group(1)):
            return trailing
        return last.group(1).strip() or None
    if _WORD_RE.search(re.sub(r"\\text\{[^{}]*\}", " w ", sentence)):
        prose = plain_number(sentence)
        if prose is not None:
            return prose
    return strip_math_delimiters(sentence) or None


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


def extract_prediction(text: str, *, strict: bool = False, list_gold: bool = False) -> Extraction:
    """The answer a completion gives; see the module docstring for the order of fallbacks.

    ``list_gold``: the gold answer is a list (:func:`is_list_answer`), so boxes at the end
    separated by white space only are read as one answer.
    """
    if "\\boxed" in text or "\\fbox" in text:
        boxed = last_boxed(text)
        if list_gold:
            boxed = _last_boxes_of_list(text, boxed)
        return boxed if boxed.answer or boxed.answer is None else Extraction(None, R.NO_ANSWER)
    if strict:
        return Extraction(None, R.NO_BOXED)
    for found in (_after_hashes(text), answer_after_phrase(text)):
        if found:
            return Extraction(found)
    bare = text.strip()
    if bare and "\n" not in bare and len(bare) <= MAX_BARE_CHARS:
        return Extraction(strip_math_delimiters(bare) or None, R.NO_ANSWER)
    return Extraction(None, R.NO_ANSWER)


def extract_gold(text: str) -> str | None:
    """The gold answer inside ``text`` (bare, ``$...$``, ``\\boxed{}`` or ``#### x``), or None."""
    if "\\boxed" in text or "\\fbox" in text:
        answer = last_boxed(text).answer
    else:
        answer = _after_hashes(text)
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
