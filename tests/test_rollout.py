"""The sampler: what it computes must not depend on how fast it computes it."""

from __future__ import annotations

import pytest
import torch

from lensrl import rollout
from lensrl.policy import build_tiny, token_logprobs
from lensrl.rollout import _sampling_logprobs, generate

ALPHABET = "0123456789+-*= abcdefghij?"
PROMPTS = ["1+2=", "what is 3*4? ", "9-7=", "abc"]  # different lengths: left padding


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def policy():
    model, tokenizer = build_tiny("nano", ALPHABET, seed=0)
    return model.eval(), tokenizer


def sample(policy, seed=0, G=4, T=24, **kw):
    model, tokenizer = policy
    g = torch.Generator().manual_seed(seed)
    return generate(model, tokenizer, PROMPTS, samples_per_prompt=G, max_new_tokens=T,
                    generator=g, **kw)


def test_some_rows_finish_early_and_some_are_truncated(policy):
    # the other tests need both kinds of rows to mean anything
    ro = sample(policy)
    assert 0 < int(ro.truncated.sum()) < len(ro.texts)


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_sampler_logprobs_equal_a_full_forward(policy, temperature):
    model, _ = policy
    ro = sample(policy, temperature=temperature)
    with torch.no_grad():
        full = token_logprobs(model, ro.input_ids, ro.attention_mask, ro.completion_ids.shape[1],
                              temperature=temperature)
    torch.testing.assert_close(full * ro.completion_mask, ro.sampler_logprobs,
                               atol=2e-5, rtol=0)


def test_deterministic_given_the_generator(policy):
    a, b = sample(policy, seed=3), sample(policy, seed=3)
    assert torch.equal(a.completion_ids, b.completion_ids) and a.texts == b.texts
    assert torch.equal(a.sampler_logprobs, b.sampler_logprobs)
    assert not torch.equal(a.completion_ids, sample(policy, seed=4).completion_ids)


def test_pruning_finished_rows_changes_nothing(policy, monkeypatch):
    monkeypatch.setattr(rollout, "PRUNE_FRACTION", 0.0)  # prune as soon as any row ends
    eager = sample(policy, seed=1, T=32)
    monkeypatch.setattr(rollout, "PRUNE_FRACTION", 2.0)  # never prune
    never = sample(policy, seed=1, T=32)
    assert torch.equal(eager.completion_ids, never.completion_ids)
    torch.testing.assert_close(eager.sampler_logprobs, never.sampler_logprobs, atol=2e-5, rtol=0)


@torch.no_grad()
def _reference(model, tokenizer, G, T, seed, temperature=1.0, top_p=1.0):
    """No cache, no pruning: the whole sequence re-run each step, all N rows sampled."""
    ids, mask = rollout.encode_prompts(tokenizer, PROMPTS, torch.device("cpu"))
    ids, mask = ids.repeat_interleave(G, 0), mask.repeat_interleave(G, 0)
    g = torch.Generator().manual_seed(seed)
    done = torch.zeros(ids.shape[0], dtype=torch.bool)
    out = []
    for _ in range(T):
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits[:, -1]
        logp = _sampling_logprobs(logits, temperature, top_p)
        tok = torch.multinomial(logp.exp(), 1, generator=g).squeeze(-1)
        tok = tok.masked_fill(done, tokenizer.pad_token_id)
        out.append(tok)
        done = done | (tok == tokenizer.eos_token_id)
        if bool(done.all()):
            break
        ids = torch.cat([ids, tok[:, None]], 1)
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
    return torch.stack(out, 1)


@pytest.mark.parametrize("top_p", [1.0, 0.8])
def test_same_tokens_as_a_plain_sampler_without_cache(policy, top_p):
    model, tokenizer = policy
    ro = sample(policy, seed=2, T=20, top_p=top_p)
    ref = _reference(model, tokenizer, G=4, T=20, seed=2, top_p=top_p)
    after_eos = ro.completion_mask == 0
    assert torch.equal(ro.completion_ids, ref.masked_fill(after_eos, tokenizer.pad_token_id))


def test_mask_and_truncation_semantics(policy):
    _, tokenizer = policy
    ro = sample(policy, seed=5)
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    for ids, m, lp, trunc in zip(ro.completion_ids, ro.completion_mask, ro.sampler_logprobs,
                                 ro.truncated):
        n = int(m.sum())
        assert bool(m[:n].all()) and not bool(m[n:].any())  # a prefix of ones
        assert bool((ids[n:] == pad).all()) and bool((lp[n:] == 0).all())
        assert bool((lp[:n] <= 0).all())
        assert bool(trunc) == (int(ids[n - 1]) != eos)
        assert int((ids[:n] == eos).sum()) == (0 if trunc else 1)
    assert ro.prompt_ids.shape[0] == ro.completion_ids.shape[0] == len(PROMPTS) * 4


def test_outputs_are_ordinary_tensors_and_training_mode_is_restored(policy):
    model, tokenizer = policy
    model.train()
    try:
        ro = sample(policy)
        assert model.training
    finally:
        model.eval()
    assert not ro.sampler_logprobs.is_inference() and not ro.completion_ids.is_inference()
    w = torch.zeros((), requires_grad=True)
    ((ro.sampler_logprobs - w) ** 2).sum().backward()  # usable by the loss
    assert w.grad is not None


def test_rollout_row_operations():
    """groups() keeps whole groups in order; concat() pads prompts left, completions right."""
    from lensrl.rollout import Rollout

    def ro(n: int, lp: int, t: int, start: int) -> Rollout:
        ids = torch.arange(start, start + n)[:, None]
        return Rollout(ids.expand(n, lp).clone(), torch.ones(n, lp, dtype=torch.long),
                       ids.expand(n, t).clone(), torch.ones(n, t, dtype=torch.long),
                       torch.full((n, t), -1.0), torch.zeros(n, dtype=torch.bool),
                       [str(i) for i in range(start, start + n)])

    a = ro(6, 2, 3, 0).groups(torch.tensor([True, False, True]), 2)
    assert a.texts == ["0", "1", "4", "5"] and a.completion_ids[:, 0].tolist() == [0, 1, 4, 5]
    both = Rollout.concat([a, ro(2, 4, 1, 10)], pad=99)
    assert both.prompt_ids.shape == (6, 4) and both.completion_ids.shape == (6, 3)
    assert both.prompt_ids[0].tolist() == [99, 99, 0, 0]  # left-padded
    assert both.prompt_mask[0].tolist() == [0, 0, 1, 1]
    assert both.completion_ids[4].tolist() == [10, 99, 99]  # right-padded
    assert both.sampler_logprobs[4].tolist() == [-1.0, 0.0, 0.0]
    assert both.texts == ["0", "1", "4", "5", "10", "11"]
