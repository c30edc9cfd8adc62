"""Model loading, the character tokenizer, LoRA and checkpoint loading."""

from __future__ import annotations

import pytest
import torch
from lora_kit import LORA, adapted, logits

from lensrl.data import ALPHABET, BUILTIN_TEMPLATE, builtin_problems, format_prompt
from lensrl.policy import (
    add_lora,
    build_char_tokenizer,
    build_tiny,
    load_checkpoint,
    load_pretrained,
    merge_lora,
)
from lensrl.runs import CheckpointError


def test_char_tokenizer_round_trips_every_builtin_prompt(tmp_path):
    tok = build_char_tokenizer(ALPHABET)
    for p in builtin_problems("test", 20, seed=0):
        text = format_prompt(p, tok, template=BUILTIN_TEMPLATE) + f"\\boxed{{{p.answer}}}"
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert len(ids) == len(text) and tok.unk_token_id not in ids
        assert tok.decode(ids) == text
    tok.save_pretrained(tmp_path)
    model, _ = build_tiny("nano", ALPHABET)
    model.save_pretrained(tmp_path)
    _, again = load_pretrained(tmp_path)
    assert again("12+3=?")["input_ids"] == tok("12+3=?")["input_ids"]


def test_missing_folders_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="a run folder"):
        load_checkpoint(tmp_path)


@pytest.mark.slow
def test_smollm2_loads_from_the_packaged_weights_and_generates():
    from lensrl.policy import load_smollm2
    from lensrl.rollout import generate

    model, tok = load_smollm2()
    assert tok.chat_template and model.config.vocab_size > 40_000
    prompt = format_prompt(builtin_problems("test", 1)[0], tok)
    ro = generate(model, tok, [prompt], samples_per_prompt=2, max_new_tokens=8,
                  generator=torch.Generator().manual_seed(0))
    assert ro.completion_ids.shape[0] == 2 and torch.isfinite(ro.sampler_logprobs).all()


# --- LoRA (model.lora) -----------------------------------------------------------------------

def test_unknown_target_module_is_named():
    model, _ = build_tiny("nano", ALPHABET)
    with pytest.raises(ValueError, match="model.lora.target_modules"):
        add_lora(model, {"target_modules": ["qkv_proj"]})


def test_adapters_are_not_added_twice():
    model, _ = adapted()
    with pytest.raises(ValueError, match="already holds LoRA adapters"):
        add_lora(model, LORA)


def test_only_adapters_train_and_start_as_the_base_model():
    base, _ = build_tiny("nano", ALPHABET, seed=0)
    before = logits(base)
    model = add_lora(base, LORA)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    assert len(trainable) == 2 * 3 * model.config.num_hidden_layers
    assert torch.equal(logits(model), before)  # B = 0: the adapters change nothing yet


def test_merged_adapter_gives_the_same_logits():
    model, _ = adapted()
    base, _ = build_tiny("nano", ALPHABET, seed=0)
    with_adapter = logits(model)
    assert (with_adapter - logits(base)).abs().max() > 1e-2  # the adapters matter
    merged = merge_lora(model)
    assert type(merged.model.layers[0].self_attn.q_proj) is torch.nn.Linear
    torch.testing.assert_close(logits(merged), with_adapter, atol=1e-5, rtol=1e-5)


def test_a_lora_folder_loads_back_with_its_adapters(tmp_path):
    """What a LoRA run's checkpoint holds (save_pretrained of the adapted model) loads back as
    the same adapted model, exactly; weights that do not match its settings are refused."""
    import json

    model, tokenizer = adapted()
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    again, _ = load_pretrained(tmp_path)
    assert type(again.model.layers[0].self_attn.q_proj) is type(model.model.layers[0].self_attn.q_proj)
    assert torch.equal(logits(again), logits(model))
    config = json.loads((tmp_path / "config.json").read_text())
    config["lensrl_lora"]["target_modules"] = ["q_proj"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="unexpected"):
        load_pretrained(tmp_path)
