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

The prose rules (2b to 2d) are in :mod:`lensrl.verify.prose`; this module holds the boxes, the
order of the rules and the limits on what reaches the parser.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from lensrl.verify import verdict as R
from lensrl.verify.prose import (
    MAX_BARE_CHARS,
    TEXT_RE,
    answer_after_phrase,
    bare_answer,
    clean_answer,
    final_sentence_answer,
    strip_math_delimiters,
)

__all__ = [
    "MAX_ANSWER_CHARS",
    "MAX_BARE_CHARS",
    "MAX_NESTING",
    "MAX_TEXT_CHARS",
    "Extraction",
    "answer_after_phrase",
    "check_answer",
    "clean_answer",
    "extract_gold",
    "extract_prediction",
    "final_sentence_answer",
    "is_list_answer",
    "last_boxed",
    "nesting_depth",
    "strip_math_delimiters",
]

MAX_TEXT_CHARS = 200_000
"""Longest prediction or gold string looked at (about 50k tokens); longer is ``"input too long"``."""
MAX_ANSWER_CHARS = 1_000
"""Longest extracted answer sent to the parser (MATH answers are far shorter)."""
MAX_NESTING = 20
"""Deepest nesting of ``{ ( [`` accepted in an answer; the LaTeX parser backtracks badly on more."""

_SEPARATOR_RE = re.compile(
    r"(?:\s|\$|,|;|\\[,;:! ()]|\\q?quad(?![A-Za-z])|\\text\{\s*(?:and|or|,)?\s*\}|and|or)*"
)
_CONNECTOR_RE = re.compile(r"(?<!\\)[,;]|and|or")  # "\\," is a thin space, not a comma
_MAX_GAP = 200  # longest separator between two boxed answers that are read as one list
_MAX_JOINED = 10  # most boxed answers read as one list (Math-Verify joins up to 5)
_MAX_GOLD_GAP = 80  # the same for a gold's boxes, which may have words between them
_CONTROL_RE = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")  # form feed, vertical tab: spaces


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


def _boxes_before(
    text: str, start: int, *, max_gap: int, most: int, joins: Callable[[str, str], bool]
) -> list[str]:
    """The boxed answers read as one list with the box that starts at ``start``: walking back,
    each box whose ``gap`` to the next is at most ``max_gap`` characters and ``joins(gap,
    content)``, at most ``most`` of them; in text order, stripped."""
    parts: list[str] = []
    while len(parts) < most and (box := _previous_box(text, start)) is not None:
        prev, prev_end = _box_argument(text, box[1])
        if prev is None or not 0 <= start - prev_end <= max_gap:
            break
        if not joins(text[prev_end:start], prev):
            break
        parts.append(prev.strip())
        start = box[0]
    return parts[::-1]


def _separated(gap: str, _: str) -> bool:
    """Boxes separated by a comma, ``and`` or ``or`` (and spaces, ``$``) are one list."""
    return bool(_SEPARATOR_RE.fullmatch(gap)) and _CONNECTOR_RE.search(gap) is not None


def last_boxed(text: str) -> Extraction:
    """The last ``\\boxed{}`` with the boxed answers directly before it joined (module docstring,
    rule 1)."""
    box = _previous_box(text, len(text))
    if box is None:
        return Extraction(None, R.NO_BOXED)
    content, _ = _box_argument(text, box[1])
    if content is None:
        return Extraction(None, R.UNTERMINATED)
    parts = _boxes_before(text, box[0], max_gap=_MAX_GAP, most=_MAX_JOINED - 1, joins=_separated)
    return Extraction(", ".join([*parts, content.strip()]), "")


def _after_hashes(text: str) -> str | None:
    i = text.rfind("####")
    if i < 0:
        return None
    answer = text[i + 4 :].split("\n", 1)[0]
    return strip_math_delimiters(answer) or None


def _last_boxes_of_list(text: str, first: Extraction) -> Extraction:
    """For a list gold: the boxes at the end joined, separated by white space alone too."""
    if first.answer is None or is_list_answer(first.answer):
        return first
    box = _previous_box(text, len(text))
    assert box is not None
    parts = _boxes_before(
        text, box[0], max_gap=_MAX_GAP, most=_MAX_JOINED,
        joins=lambda gap, prev: bool(_SEPARATOR_RE.fullmatch(gap)) and not is_list_answer(prev),
    )
    if not parts:
        return first
    return Extraction(", ".join([*parts, first.answer]), "")


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
    found = found or final_sentence_answer(text, list_gold=list_gold) or bare_answer(text, list_gold)
    return Extraction(found, "" if found else R.NO_ANSWER)


def _few_words(gap: str, _: str) -> bool:
    """Gold boxes separated by at most three words (``papers and``) are one list."""
    gap = TEXT_RE.sub(lambda m: " " + m.group(1) + " ", gap)
    words = [w for w in re.findall(r"[A-Za-z]+", gap) if w not in ("quad", "qquad")]
    return not re.search(r"[^\sA-Za-z$,;()\\]", gap) and len(words) <= 3


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
    parts = _boxes_before(text, box[0], max_gap=_MAX_GOLD_GAP, most=_MAX_JOINED - 1, joins=_few_words)
    return ", ".join([*parts, content.strip()])


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
