"""Length-sorted, trimmed micro-batches and the shared prompt prefix change no gradient."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import pytest
import torch

from lensrl.core import policy_loss
from lensrl.policy import token_logprobs
from lensrl.train.batching import SharedPrefix, plan_micro_batches, trim, trim_completion
from lensrl.train.config import TrainConfig
from lensrl.train.presets import load_preset
from lensrl.train.state import build_state
from lensrl.train.trainer import collect, score, update

pytestmark = pytest.mark.usefixtures("one_thread")


# --- the plan --------------------------------------------------------------------------------

def _cost(chunks, pl, cl, call_cost):
    return sum(len(c) * (max(pl[i] for i in c) + max(cl[i] for i in c)) + call_cost
               for c in chunks)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("max_rows", [1, 3, 8])
def test_plan_is_a_partition_and_optimal_over_sorted_cuts(seed, max_rows):
    g = torch.Generator().manual_seed(seed)
    n = 10
    pl = torch.randint(1, 30, (n,), generator=g)
    cl = torch.randint(1, 40, (n,), generator=g)
    rows = torch.randperm(n, generator=g)[:7]
    plan = plan_micro_batches(rows, pl, cl, max_rows, call_cost=16)
    got = [mb.rows.tolist() for mb in plan]
    assert sorted(sum(got, [])) == sorted(rows.tolist())
    assert all(1 <= len(c) <= max_rows for c in got)
    for mb in plan:  # each micro-batch needs exactly its rows' longest prompt and completion
        assert mb.prompt_len == int(pl[mb.rows].max())
        assert mb.completion_len == int(cl[mb.rows].max())
    # brute force: every way to cut the (completion, prompt)-sorted rows into runs
    order = sorted(rows.tolist(), key=lambda i: (int(cl[i]), int(pl[i])))
    best = min(
        _cost([order[a:b] for a, b in zip((0, *cuts), (*cuts, len(order)))], pl, cl, 16)
        for k in range(len(order))
        for cuts in itertools.combinations(range(1, len(order)), k)
        if all(b - a <= max_rows for a, b in zip((0, *cuts), (*cuts, len(order))))
    )
    assert _cost(got, pl, cl, 16) == best


def test_plan_edge_cases():
    pl, cl = torch.tensor([3, 3]), torch.tensor([5, 9])
    assert plan_micro_batches(torch.tensor([], dtype=torch.long), pl, cl, 4) == []
    with pytest.raises(ValueError, match="max_rows"):
        plan_micro_batches(torch.tensor([0]), pl, cl, 0)
    # a huge per-call cost keeps everything in one micro-batch
    assert len(plan_micro_batches(torch.tensor([0, 1]), pl, cl, 4, call_cost=10**6)) == 1


# --- the values ------------------------------------------------------------------------------

def _config(tmp_path: Path, micro_batch: int | None = None, **algo) -> TrainConfig:
    data = load_preset("smoke")
    data["model"] = {**data["model"], "dtype": "float32"}  # an exactness test: pinned to fp32
    # prompts of different lengths, so rows are left-padded by different amounts
    data["task"] = {**data["task"], "levels": [1, 2, 3], "template": "{problem}"}
    data["batch"] = {**data["batch"], "prompts_per_update": 4}  # one update: one gradient
    if micro_batch is not None:
        data["batch"]["rows_per_micro_batch"] = micro_batch
    data["algo"] = {**data["algo"], **algo}
    data["optim"] = {**data["optim"], "grad_clip": 1e9}
    data["run"] = {**data["run"], "run_dir": str(tmp_path / "run"), "steps": 1}
    return TrainConfig.from_dict(data)


@pytest.fixture(scope="module")
def rollout(tmp_path_factory):
    """One smoke rollout scored by LENS with a verdict pattern that makes every advantage
    non-zero (mixed and all-wrong groups), and its setup."""
    cfg = _config(tmp_path_factory.mktemp("batching"))
    s = build_state(cfg)
    try:
        batch, _ = collect(s, cfg)
    finally:
        s.verifier.close()
    correct = torch.tensor([1.0, 0, 0, 1] + [0.0] * 4 + [0, 1, 0, 0] + [0.0] * 4)
    batch = score(s, cfg, dataclasses.replace(batch, correct=correct))
    assert bool((batch.advantages != 0).all())
    ro = batch.rollout
    assert len(set(ro.prompt_mask.sum(-1).tolist())) > 1  # prompts of different lengths
    assert len(set(ro.completion_mask.sum(-1).tolist())) > 2
    return s, batch


def _reference_grads(s, cfg, batch):
    """The plain computation: every row of an update padded to full width in one forward."""
    ro, a, G = batch.rollout, cfg.algo, cfg.rollout.samples_per_prompt
    model = s.model
    model.zero_grad(set_to_none=True)
    total = [torch.zeros_like(p) for p in model.parameters()]
    per = cfg.batch.prompts_per_update * G
    for start in range(0, len(batch.correct), per):
        rows = torch.arange(start, start + per)
        lp = token_logprobs(model, ro.input_ids[rows], ro.attention_mask[rows],
                            ro.completion_ids.shape[1])
        loss, _ = policy_loss(lp, batch.old_logprobs[rows], batch.advantages[rows],
                              ro.completion_mask[rows], aggregation=a.aggregation,
                              norm_tokens=cfg.rollout.max_new_tokens)
        loss.backward()
        for t, p in zip(total, model.parameters()):
            t += p.grad
            p.grad = None
    return total


class _Capture(torch.optim.SGD):
    """An optimizer that records the gradient it is asked to apply."""

    def step(self, closure=None):
        self.grads = [p.grad.detach().clone() for p in self.param_groups[0]["params"]]
        return super().step(closure)


def _update_grads(s, cfg, batch):
    """The gradient ``update`` hands the optimizer (one update per step here)."""
    import copy

    model = copy.deepcopy(s.model)
    optimizer = _Capture(model.parameters(), lr=0.0)
    s = dataclasses.replace(s, model=model, optimizer=optimizer,
                            scheduler=torch.optim.lr_scheduler.LambdaLR(optimizer, lambda u: 1.0))
    update(s, cfg, batch, 0)
    return optimizer.grads


def _rel(a, b):
    return float((a - b).norm() / b.norm().clamp(min=1e-30))


@pytest.mark.parametrize("share", [True, False])
@pytest.mark.parametrize("micro_batch", [8, 3, 1])
@pytest.mark.parametrize("aggregation", ["seq_mean_token_mean", "token_mean"])
def test_update_gradient_equals_the_padded_full_batch(tmp_path, rollout, share, micro_batch,
                                                     aggregation):
    s, batch = rollout
    cfg = _config(tmp_path, micro_batch=micro_batch, share_prompt_prefix=share,
                  aggregation=aggregation)
    want = _reference_grads(s, cfg, batch)
    got = _update_grads(s, cfg, batch)
    assert sum(float(w.norm()) for w in want) > 0
    for (name, _), g, w in zip(s.model.named_parameters(), got, want):
        if float(w.norm()) > 0:
            assert _rel(g, w) < 1e-4, name
        else:
            assert float(g.norm()) < 1e-9, name


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_shared_prefix_logprobs_equal_the_full_forward(rollout, temperature):
    s, batch = rollout
    ro, G = batch.rollout, 4
    Lp = ro.prompt_ids.shape[1]
    rows = torch.tensor([0, 3, 5, 9, 14, 15])  # four prompts
    groups = torch.unique(rows // G)
    with torch.no_grad():
        shared = SharedPrefix(s.model, ro.prompt_ids[groups * G], ro.prompt_mask[groups * G],
                              groups)
        for mb in plan_micro_batches(rows, ro.prompt_mask.sum(-1), ro.completion_mask.sum(-1),
                                     max_rows=2, call_cost=0):
            ids, mask = trim(ro.input_ids, mb, Lp), trim(ro.attention_mask, mb, Lp)
            got = shared.logprobs(mb, ids, mask, G, temperature=temperature)
            want = token_logprobs(s.model, ro.input_ids[mb.rows], ro.attention_mask[mb.rows],
                                  ro.completion_ids.shape[1], temperature=temperature)
            cmask = trim_completion(ro.completion_mask, mb)
            assert got.shape == cmask.shape
            torch.testing.assert_close(got * cmask, want[:, : mb.completion_len] * cmask,
                                       atol=2e-5, rtol=0)
