"""LoRA test helpers shared by tests/test_policy.py and tests/train/test_lora.py (tests/ is on
sys.path through its conftest.py)."""

from __future__ import annotations

from typing import Any

import torch

from lensrl.data import ALPHABET
from lensrl.policy import add_lora, build_char_tokenizer, build_tiny

LORA = {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj", "down_proj"]}


def adapted(seed: int = 0) -> tuple[Any, Any]:
    """A nano model with adapters whose B is random, so they change the outputs (peft starts B
    at zero)."""
    model, tokenizer = build_tiny("nano", ALPHABET, seed=0)
    model = add_lora(model, LORA, seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    return model.eval(), tokenizer


def logits(model: Any, text: str = "12+34=46 5+6=") -> torch.Tensor:
    ids = build_char_tokenizer(ALPHABET)(text, return_tensors="pt").input_ids
    with torch.no_grad():
        return model(input_ids=ids).logits
