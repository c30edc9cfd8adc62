"""The sampler's decoders: the hand-written Llama step computes the model's own logits."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from lensrl import decode
from lensrl.decode import HFDecoder, LlamaDecoder, make_decoder
from lensrl.rollout import encode_prompts, generate

ALPHABET = "0123456789+-*= abcdefghij?"
PROMPTS = ["1+2=", "what is 3*4? ", "9-7=", "abc"]  # different lengths: left padding


pytestmark = pytest.mark.usefixtures("one_thread")


def _llama(**overrides):
    from lensrl.policy import build_char_tokenizer

    tokenizer = build_char_tokenizer(ALPHABET)
    config = dict(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    config.update(overrides)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = LlamaForCausalLM(LlamaConfig(**config)).eval()
    return model, tokenizer


# plain; grouped-query attention with an explicit head_dim; a scaled rotary embedding
VARIANTS = {
    "mha": {},
    "gqa": dict(num_key_value_heads=2, head_dim=8),
    "rope_scaling": dict(rope_parameters={"rope_type": "linear", "factor": 2.0,
                                          "rope_theta": 500.0}),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_llama_step_equals_the_models_forward(variant):
    """Feed the same tokens to both decoders for 40 steps, dropping rows on the way (as the
    sampler does) and past the 32 spare slots the buffers start with: every step's logits
    agree with the model's own forward."""
    model, tokenizer = _llama(**VARIANTS[variant])
    assert LlamaDecoder.supports(model)
    ids, mask = encode_prompts(tokenizer, PROMPTS, torch.device("cpu"))  # left-padded
    G = 3
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    fast, ref = LlamaDecoder(model), HFDecoder(model)
    with torch.inference_mode():
        a, b = fast.prefill(ids, mask, positions, G), ref.prefill(ids, mask, positions, G)
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
        attention = mask.repeat_interleave(G, 0)
        pos = positions[:, -1:].repeat_interleave(G, 0) + 1
        gen = torch.Generator().manual_seed(1)
        for t in range(40):
            if t in (5, 12):  # drop rows, as the sampler does for finished ones
                keep = torch.arange(0, attention.shape[0], 2 if t == 5 else 3)
                fast.select(keep)
                ref.select(keep)
                attention, pos = attention[keep], pos[keep]
            tok = torch.randint(4, len(tokenizer), (attention.shape[0],), generator=gen)
            attention = torch.cat([attention, attention.new_ones((len(tok), 1))], 1)
            a, b = fast.step(tok, attention, pos), ref.step(tok, attention, pos)
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
            pos = pos + 1
    assert fast.keys[0].shape[2] > ids.shape[1] + 32  # the buffers grew


def test_generate_draws_the_same_samples_with_either_decoder():
    model, tokenizer = _llama(num_key_value_heads=2)
    kw = dict(samples_per_prompt=4, max_new_tokens=24, temperature=0.8, top_p=0.95)
    fast = generate(model, tokenizer, PROMPTS, generator=torch.Generator().manual_seed(3), **kw)
    ref = generate(model, tokenizer, PROMPTS, generator=torch.Generator().manual_seed(3),
                   decoder=HFDecoder, **kw)
    assert torch.equal(fast.completion_ids, ref.completion_ids) and fast.texts == ref.texts
    torch.testing.assert_close(fast.sampler_logprobs, ref.sampler_logprobs, atol=1e-5, rtol=0)
    assert 0 < int(fast.truncated.sum()) < len(fast.texts)  # rows finished at different times


@pytest.mark.parametrize("change", [
    dict(attention_bias=True), dict(mlp_bias=True), dict(hidden_act="gelu"),
])
def test_other_llama_layers_use_the_models_forward(change):
    model, _ = _llama(**change)
    assert not LlamaDecoder.supports(model)
    assert isinstance(make_decoder(model), HFDecoder)


def test_a_subclass_or_another_architecture_uses_the_models_forward():
    class MyLlama(LlamaForCausalLM):
        pass

    model, _ = _llama()
    assert not LlamaDecoder.supports(MyLlama(model.config))
    from transformers import GPT2Config, GPT2LMHeadModel

    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=40))
    assert isinstance(decode.make_decoder(gpt2), HFDecoder)
