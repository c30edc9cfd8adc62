"""Compare one extracted prediction with one extracted gold answer using Math-Verify.

Runs inside worker processes (and in the serial baseline of the benchmark). The inputs are the
short answer strings that :mod:`lensrl.verify.extract` produced and checked; each is wrapped in
``\\boxed{}`` and parsed by Math-Verify with *LaTeX extraction only*. Math-Verify's plain-expression
extractor is deliberately not used: it calls ``sympy.parse_expr``, which ``eval``-s its input.
LaTeX goes through latex2sympy's ANTLR grammar, which builds SymPy objects without evaluating code.

Math-Verify's own ``signal.alarm`` timeouts are switched off (``None``): the pool enforces a
wall-clock limit from outside by killing the worker, which also covers time spent in C code that
an alarm cannot interrupt (huge integer powers).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable
from typing import Any

from latex2sympy2_extended import NormalizationConfig
from math_verify import LatexExtractionConfig, parse
from math_verify import verify as mv_verify
from sympy import Basic, MatrixBase

from lensrl.verify import verdict as R

_CONFIG = [
    LatexExtractionConfig(
        boxed_match_priority=0,
        normalization_config=NormalizationConfig(
            basic_latex=True,
            units=True,
            malformed_operators=True,
            nits=True,
            boxed="all",
            equations=False,
        ),
    )
]

# "1 234 567", "1\,234", "12{,}345", "1,\!000": digit groups of three with a separator.
_THOUSANDS_RE = re.compile(r"[+-]?\d{1,3}(?:(?:\\[,!; ]|\{,\}|,\\!|,|~|\s)\d{3})+(?:\.\d+)?")
_SET_RE = re.compile(r"\\\{.*\\\}", re.DOTALL)
_TUPLE_RE = re.compile(r"[(\[].*,.*[)\]]", re.DOTALL)
_SIZING_RE = re.compile(r"\\(?:left|right|big|Big|bigg|Bigg)(?![A-Za-z])")

logging.getLogger("math_verify").setLevel(logging.CRITICAL)

_GOLD_CACHE_SIZE = 4096
_gold_cache: dict[str, list[Any]] = {}


_UNICODE = {
    "\u2212": "-",  # minus sign
    "\u00b0": "^\\circ ",  # degree sign
    "\u03c0": "\\pi ",
    "\u221e": "\\infty ",
    "\u00d7": "\\times ",
    "\u22c5": "\\cdot ",
    "\u00b7": "\\cdot ",
    "\u00f7": "\\div ",
}
# ASCII and Unicode relations: the LaTeX parser reads only their commands. Longest first, so that
# "<=" is not read as "<" followed by "=".
_RELATIONS = {
    ">=": "\\geq ",
    "<=": "\\leq ",
    "=<": "\\leq ",
    "!=": "\\neq ",
    "=/=": "\\neq ",
    "<>": "\\neq ",
    "\u2265": "\\geq ",
    "\u2264": "\\leq ",
    "\u2260": "\\neq ",
}
_UNICODE.update(_RELATIONS)
_UNICODE_RE = re.compile("|".join(re.escape(k) for k in sorted(_UNICODE, key=len, reverse=True)))
_FINAL_STOP_RE = re.compile(r"(?<=\d)\.$")  # "3." at the end of a sentence inside the box


def normalize(answer: str) -> str:
    """Rewrites Math-Verify's LaTeX parser does not do itself: thousands separators written with
    spaces, a full stop after a final digit, Unicode symbols (``−``, ``°``, ``π``, ``∞``, ``×``,
    ``·``, ``÷``) that models write for their LaTeX commands, and relations written in ASCII or
    Unicode (``>=``, ``=<``, ``!=``, ``<>``, ``≥``, ``≠`` ...) mapped to ``\\geq``, ``\\leq``,
    ``\\neq``."""
    s = _FINAL_STOP_RE.sub("", _UNICODE_RE.sub(lambda m: _UNICODE[m.group()], answer).strip())
    if _THOUSANDS_RE.fullmatch(s):
        s = re.sub(r"[^\d.+-]", "", s)
    return s.strip()


def parse_answer(answer: str) -> list[Any]:
    """Math-Verify's parse of one answer string: SymPy objects then a string fallback, or []."""
    result: list[Any] = parse(
        "\\boxed{" + normalize(answer) + "}",
        extraction_config=_CONFIG,
        parsing_timeout=None,
        raise_on_error=False,
    )
    return result


def _has_math(parsed: list[Any]) -> bool:
    return any(isinstance(x, Basic | MatrixBase) for x in parsed)


def _shape(answer: str) -> str:
    s = _SIZING_RE.sub("", answer).replace(" ", "")
    if _SET_RE.fullmatch(s):
        return "set"
    if _TUPLE_RE.fullmatch(s):
        return "tuple"
    return "other"


def _shapes_clash(gold: str, pred: str) -> bool:
    """A written set against a written tuple or interval: Math-Verify calls (2,3) = \\{2,3\\}.

    Math-Verify reads ``(2,3)`` as an open interval and accepts a two-element set for it (so that
    a bare ``2,3`` matches). An explicit ``\\{2,3\\}`` is neither the pair nor the interval, so when
    one side is written with set braces and the other with brackets the answer is wrong.
    """
    return {_shape(gold), _shape(pred)} == {"set", "tuple"}


def _probe(parsed: list[Any]) -> None:
    """Evaluate the gold once (``doit``) so that a gold too big to evaluate, like
    ``10^{10^{10}}``, hangs here, in the gold phase, and is blamed on the gold."""
    for x in parsed:
        if isinstance(x, Basic | MatrixBase):
            with contextlib.suppress(Exception):
                x.doit()


def gold_parsed(gold: str) -> list[Any]:
    """Parse a gold answer, cached: in GRPO every gold is judged against G predictions."""
    cached = _gold_cache.get(gold)
    if cached is None:
        if len(_gold_cache) >= _GOLD_CACHE_SIZE:
            _gold_cache.clear()
        cached = parse_answer(gold)
        _probe(cached)
        _gold_cache[gold] = cached
    return cached


def judge(
    gold: str, pred: str | None, on_gold_parsed: Callable[[], None] | None = None
) -> tuple[bool | None, str]:
    """(correct, reason) for two extracted answers; gold first, as Math-Verify requires.

    ``pred=None`` checks the gold only and answers ``(False, GOLD_OK)`` when it parses.
    ``on_gold_parsed`` is called between the gold and the prediction phases so that a supervisor
    can tell which side was being parsed if the call never returns.
    """
    g = gold_parsed(gold)
    if on_gold_parsed is not None:
        on_gold_parsed()
    if not _has_math(g):
        return None, R.GOLD_UNPARSABLE
    if pred is None:
        return False, R.GOLD_OK
    p = parse_answer(pred)
    if not _has_math(p):
        return False, R.PREDICTION_UNPARSABLE
    if _shapes_clash(gold, pred):
        return False, R.NOT_EQUAL
    ok = mv_verify(g, p, timeout_seconds=None, raise_on_error=False)
    return (True, R.EQUAL) if ok else (False, R.NOT_EQUAL)
