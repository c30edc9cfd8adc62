"""verl's own compute_advantage with the lensrl estimators equals lensrl.core on the same numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from verl import DataProto
from verl.trainer.ppo import core_algos, ray_trainer
from verl.trainer.ppo.v1 import utils as v1_utils

from lensrl.core import compute_advantages, sequence_mean_logprob
from lensrl.integrations.verl import VERL_ESTIMATORS, lens_outcome_advantage

P, G, T = 6, 4, 7


def make_batch(seed: int = 0, p: int = P, g: int = G) -> dict[str, torch.Tensor]:
    """``p`` consecutive groups of ``g``: negative, mixed and positive groups, ragged lengths."""
    gen = torch.Generator().manual_seed(seed)
    correct = (torch.rand(p, g, generator=gen) < 0.4).double()
    correct[0] = 0.0  # a negative group
    correct[1] = 1.0  # a positive group
    correct[2] = torch.tensor([1.0] + [0.0] * (g - 1))  # a mixed group with one right answer
    correct = correct.reshape(-1)  # (N,)
    n = p * g
    lengths = torch.randint(1, T + 1, (n,), generator=gen)
    mask = (torch.arange(T)[None, :] < lengths[:, None]).float()  # (N, T)
    logprobs = -3.0 * torch.rand(n, T, generator=gen) * mask + 7.0 * (1 - mask)  # junk on padding
    rewards = torch.zeros(n, T)
    rewards[torch.arange(n), lengths - 1] = correct.float()  # verl puts the score on the last token
    return {"correct": correct, "mask": mask, "logprobs": logprobs, "rewards": rewards}


def to_dataproto(b: dict[str, torch.Tensor], perm: torch.Tensor, g: int = G) -> DataProto:
    """The batch with rows shuffled by ``perm``; uid = group of the original row."""
    uid = np.array([f"prompt-{int(i) // g}" for i in perm], dtype=object)
    return DataProto.from_dict(
        tensors={
            "token_level_rewards": b["rewards"][perm],
            "response_mask": b["mask"][perm],
            "old_log_probs": b["logprobs"][perm],
        },
        non_tensors={"uid": uid},
    )


def row_advantages(data: DataProto) -> torch.Tensor:
    """``(B,)`` per-row advantage; checks it is constant over the response and 0 on padding."""
    adv, mask = data.batch["advantages"], data.batch["response_mask"]
    first = adv[:, 0]
    torch.testing.assert_close(adv, first[:, None] * mask)
    return first


def core_reference(b: dict[str, torch.Tensor], estimator: str, **kw: float) -> torch.Tensor:
    lp = sequence_mean_logprob(b["logprobs"], b["mask"])
    return compute_advantages(b["correct"], lp, group_size=G, estimator=estimator, **kw).float()


@pytest.mark.parametrize("verl_name", sorted(VERL_ESTIMATORS))
@pytest.mark.parametrize("seed", [0, 1])
def test_compute_advantage_equals_core_on_shuffled_rows(verl_name: str, seed: int) -> None:
    b = make_batch(seed)
    perm = torch.randperm(P * G, generator=torch.Generator().manual_seed(100 + seed))
    out = ray_trainer.compute_advantage(to_dataproto(b, perm), verl_name, config=None)
    expected = core_reference(b, VERL_ESTIMATORS[verl_name])[perm]
    torch.testing.assert_close(row_advantages(out), expected, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(out.batch["returns"], out.batch["advantages"])


def test_v1_trainer_entry_point_is_bridged() -> None:
    """The v1 trainers call compute_advantage through v1.utils, which imported it by name."""
    b = make_batch(3)
    perm = torch.randperm(P * G, generator=torch.Generator().manual_seed(7))
    data = to_dataproto(b, perm)
    keys = [f"{uid}_0_0" for uid in data.non_tensor_batch["uid"]]
    out = v1_utils.compute_advantage_for_multi_trajectories(data, keys, "lens", config=None)
    torch.testing.assert_close(row_advantages(out), core_reference(b, "lens")[perm])


def test_hyperparameters_come_from_the_algorithm_config() -> None:
    b = make_batch(4)
    perm = torch.randperm(P * G, generator=torch.Generator().manual_seed(8))
    config = OmegaConf.create({"adv_estimator": "lens", "lens_alpha": 0.5, "lens_d_floor": 3.0})
    out = ray_trainer.compute_advantage(to_dataproto(b, perm), "lens", config=config)
    expected = core_reference(b, "lens", alpha=0.5, d_floor=3.0)[perm]
    torch.testing.assert_close(row_advantages(out), expected)
    assert not torch.allclose(expected, core_reference(b, "lens")[perm])


# grpo_vectorized goes through compute_advantage's generic branch, which does not pass
# norm_adv_by_std_in_grpo, so verl 0.9.1 always std-normalises it: only the True case compares.
@pytest.mark.parametrize(
    ("builtin", "norm_by_std"), [("grpo", True), ("grpo", False), ("grpo_vectorized", True)]
)
def test_our_grpo_equals_verl_builtin(builtin: str, norm_by_std: bool) -> None:
    """Our conventions (unbiased std, eps = 1e-6, uid grouping) are those of the paper's stack."""
    b = make_batch(5, p=8, g=5)
    perm = torch.randperm(40, generator=torch.Generator().manual_seed(9))
    ours = "lensrl_grpo" if norm_by_std else "lensrl_dr_grpo"
    config = OmegaConf.create({"adv_estimator": builtin, "norm_adv_by_std_in_grpo": norm_by_std})
    theirs = ray_trainer.compute_advantage(
        to_dataproto(b, perm, g=5), builtin, norm_adv_by_std_in_grpo=norm_by_std, config=config
    )
    mine = ray_trainer.compute_advantage(to_dataproto(b, perm, g=5), ours, config=None)
    torch.testing.assert_close(mine.batch["advantages"], theirs.batch["advantages"])
    assert row_advantages(theirs).abs().sum() > 0


def test_groups_of_unequal_size_match_core_per_group() -> None:
    """A group of 3 next to groups of 4 (e.g. after a filter): 1/G and the std use 3."""
    b = make_batch(6)
    keep = torch.tensor([i for i in range(P * G) if i != 9])  # group 2 loses a row
    perm = keep[torch.randperm(len(keep), generator=torch.Generator().manual_seed(10))]
    out = ray_trainer.compute_advantage(to_dataproto(b, perm), "lens", config=None)
    lp = sequence_mean_logprob(b["logprobs"], b["mask"])
    expected = torch.zeros(P * G)
    for g in range(P):
        rows = [i for i in range(g * G, (g + 1) * G) if i != 9]
        expected[rows] = compute_advantages(
            b["correct"][rows], lp[rows], group_size=len(rows), estimator="lens"
        ).float()
    torch.testing.assert_close(row_advantages(out), expected[perm])


def test_cannot_judge_rows_are_left_out_as_in_core() -> None:
    b = make_batch(7)
    perm = torch.randperm(P * G, generator=torch.Generator().manual_seed(11))
    judged = torch.ones(P * G, dtype=torch.bool)
    judged[[2, 9, 13]] = False
    data = to_dataproto(b, perm)
    data.non_tensor_batch["judged"] = judged[perm].numpy()
    out = ray_trainer.compute_advantage(data, "lens", config=None)
    correct = torch.where(judged, b["correct"], torch.nan)
    lp = sequence_mean_logprob(b["logprobs"], b["mask"])
    expected = compute_advantages(correct, lp, group_size=G, estimator="lens").float()
    torch.testing.assert_close(row_advantages(out), expected[perm])
    assert bool((row_advantages(out)[~judged[perm]] == 0).all())


def test_lens_without_old_log_probs_fails_loudly() -> None:
    """Called as verl calls it without the bridge (no old_log_probs): an error, never GRPO."""
    b = make_batch(8)
    fn = core_algos.get_adv_estimator_fn("lens")
    with pytest.raises(ValueError, match="old_log_probs"):
        fn(
            token_level_rewards=b["rewards"],
            response_mask=b["mask"],
            index=np.repeat(np.arange(P), G).astype(object),
            config=None,
        )


def test_plus_minus_one_rewards_are_refused() -> None:
    """DAPO's math scorer returns ±1; LENS needs 0/1, so the adapter refuses rather than guess."""
    b = make_batch(9)
    lengths = b["mask"].sum(-1).long()
    plus_minus = torch.zeros_like(b["rewards"])
    plus_minus[torch.arange(P * G), lengths - 1] = 2 * b["correct"].float() - 1
    with pytest.raises(ValueError, match="0/1 rewards"):
        lens_outcome_advantage(
            plus_minus, b["mask"], np.repeat(np.arange(P), G).astype(object), estimator="lens"
        )
