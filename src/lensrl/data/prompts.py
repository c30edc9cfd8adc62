"""Turn a :class:`Problem` into the text a model is prompted with.

``format_prompt`` picks, in order: an explicit ``template``; the tokenizer's chat template (one
user message, generation prompt added); :data:`PLAIN_TEMPLATE`. Every template asks for the final
answer in ``\\boxed{}``, the one place :func:`lensrl.verify.verify` reads it from in strict mode.
Templates use ``str.format`` with a ``{problem}`` field, so literal braces are doubled:
``"{problem} \\\\boxed{{}}"``.
"""

from __future__ import annotations

from typing import Any

from lensrl.data.builtin import BUILTIN_TEMPLATE
from lensrl.data.problem import Problem

PLAIN_TEMPLATE = (
    "Solve the following problem. Reason step by step, and put your final answer within "
    "\\boxed{{}}.\n\nProblem: {problem}\n\nSolution:"
)
CHAT_INSTRUCTION = (
    "{problem}\n\nPlease reason step by step, and put your final answer within \\boxed{{}}."
)

__all__ = ["BUILTIN_TEMPLATE", "CHAT_INSTRUCTION", "PLAIN_TEMPLATE", "format_prompt"]


def _fill(template: str, problem: Problem) -> str:
    if "{problem}" not in template:
        raise ValueError(f"template must contain '{{problem}}', got {template!r}")
    try:
        return template.format(problem=problem.problem)
    except (KeyError, IndexError, ValueError) as e:
        raise ValueError(
            f"template {template!r} does not format ({e}); write literal braces as '{{{{' '}}}}'"
        ) from None


def format_prompt(problem: Problem, tokenizer: Any = None, *, template: str | None = None) -> str:
    """The prompt for ``problem``: ``template`` if given, else the chat template, else plain."""
    if template is not None:
        return _fill(template, problem)
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        messages = [{"role": "user", "content": _fill(CHAT_INSTRUCTION, problem)}]
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        if not isinstance(text, str):
            raise TypeError(f"apply_chat_template returned {type(text).__name__}, not str")
        return text
    return _fill(PLAIN_TEMPLATE, problem)
