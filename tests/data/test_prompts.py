"""format_prompt: explicit template, the tokenizer's chat template, or the plain template."""

from __future__ import annotations

from typing import Any

import pytest

from lensrl.data import BUILTIN_TEMPLATE, PLAIN_TEMPLATE, Problem, format_prompt

P = Problem(id="x", problem="What is $\\{1,2\\}$? Use {braces}.", answer="2")


def test_plain_template_asks_for_boxed() -> None:
    text = format_prompt(P)
    assert P.problem in text and "\\boxed{}" in text
    assert text == PLAIN_TEMPLATE.format(problem=P.problem)


def test_explicit_template_wins() -> None:
    assert format_prompt(P, template="Q: {problem} \\boxed{{}}") == f"Q: {P.problem} \\boxed{{}}"
    short = Problem(id="b", problem="47+8=?", answer="55")
    assert format_prompt(short, template=BUILTIN_TEMPLATE) == "47+8=? \\boxed{}\n"


@pytest.mark.parametrize("template", ["no placeholder", "{problem} \\boxed{}", "{problem} {other}"])
def test_bad_templates(template: str) -> None:
    with pytest.raises(ValueError, match="template"):
        format_prompt(P, template=template)


class FakeChatTokenizer:
    chat_template = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}<assistant>"

    def __init__(self) -> None:
        self.calls: list[tuple[Any, dict[str, Any]]] = []

    def apply_chat_template(self, messages: Any, **kwargs: Any) -> str:
        self.calls.append((messages, kwargs))
        return "<user>" + messages[0]["content"] + "<assistant>"


def test_chat_template_used_when_present() -> None:
    tok = FakeChatTokenizer()
    text = format_prompt(P, tok)
    (messages, kwargs) = tok.calls[0]
    assert messages[0]["role"] == "user" and P.problem in messages[0]["content"]
    assert "\\boxed{}" in messages[0]["content"]
    assert kwargs == {"tokenize": False, "add_generation_prompt": True}
    assert text.endswith("<assistant>")


def test_tokenizer_without_chat_template_falls_back_to_plain() -> None:
    class NoChat:
        chat_template = None

    assert format_prompt(P, NoChat()) == format_prompt(P)


def test_real_transformers_tokenizer() -> None:
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(WordLevel({"<unk>": 0}, unk_token="<unk>"))
    )
    assert format_prompt(P, tok) == format_prompt(P)  # no chat template: plain
    tok.chat_template = (
        "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    text = format_prompt(P, tok)
    assert text.startswith("<|user|>" + P.problem) and text.endswith("<|assistant|>")
    assert "\\boxed{}" in text
