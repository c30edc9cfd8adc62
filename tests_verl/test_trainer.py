"""The lens_sync trainer runs verl's own v1 ``_compute_advantage`` over an in-memory TransferQueue."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import transfer_queue
from omegaconf import OmegaConf
from tensordict import NonTensorStack, TensorDict
from verl.trainer.ppo.v1 import get_trainer_cls

from lensrl.core import compute_advantages, group_diagnostics
from lensrl.integrations.verl_trainer import LensPPOTrainerSync

P, G = 4, 4


class Meta:
    """The two attributes of transfer_queue.KVBatchMeta that _compute_advantage reads."""

    def __init__(self, keys: list[str]) -> None:
        self.keys, self.partition_id = keys, "train"

    def __len__(self) -> int:
        return len(self.keys)


class FakeTQ:
    """Rows by key: tensors kept as 1-D per row (nested on the way out), the rest as objects."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    def kv_batch_get(
        self, keys: list[str], partition_id: str, select_fields: list[str]
    ) -> TensorDict:
        fields = [f for f in select_fields if f in self.rows[keys[0]]]
        out: dict[str, Any] = {}
        for f in fields:
            values = [self.rows[k][f] for k in keys]
            if isinstance(values[0], torch.Tensor):
                out[f] = torch.nested.as_nested_tensor(values, layout=torch.jagged)
            else:
                out[f] = NonTensorStack(*values)
        return TensorDict(out, batch_size=len(keys))

    def kv_batch_put(self, keys: list[str], partition_id: str, fields: TensorDict) -> Meta:
        for f in fields.keys():  # noqa: SIM118 (iterating a TensorDict walks its rows)
            for k, row in zip(keys, fields[f].unbind(0)):
                self.rows[k][f] = row
        return Meta(keys)


def fill(tq: FakeTQ, seed: int) -> tuple[list[str], torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    correct = (torch.rand(P * G, generator=gen) < 0.4).float()
    correct[:G] = 0.0  # one negative group
    judged = torch.ones(P * G, dtype=torch.bool)
    judged[5] = False  # compute_score could not judge this one (it scored 0.0)
    correct[5] = 0.0
    lengths = torch.randint(1, 6, (P * G,), generator=gen)
    order = torch.randperm(P * G, generator=gen)  # TransferQueue order is not group order
    keys, logprobs = [], []
    for i in order.tolist():
        key = f"uid{i // G}_{i}_0"
        keys.append(key)
        lp = -2.0 * torch.rand(int(lengths[i]), generator=gen)
        scores = torch.zeros(int(lengths[i]))
        scores[-1] = correct[i]
        tq.rows[key] = {
            "uid": f"uid{i // G}",
            "response_mask": torch.ones(int(lengths[i])),
            "rm_scores": scores,
            "old_log_probs": lp,
            "extra_fields": {
                "reward_extra_info": {"judged": bool(judged[i]), "acc": float(correct[i])}
            },
        }
        logprobs.append(lp.mean())
    seq_lp = torch.zeros(P * G)
    seq_lp[order] = torch.stack(logprobs)
    return keys, torch.where(judged, correct, torch.nan).double(), seq_lp.double(), order


def make_trainer(estimator: str) -> LensPPOTrainerSync:
    trainer = object.__new__(LensPPOTrainerSync)  # no Ray workers: only _compute_advantage runs
    trainer.config = OmegaConf.create(
        {
            "algorithm": {
                "adv_estimator": estimator,
                "use_kl_in_reward": False,
                "gamma": 1.0,
                "lam": 1.0,
                "norm_adv_by_std_in_grpo": True,
                "rollout_correction": None,
                "lens_alpha": 0.25,
            },
            "actor_rollout_ref": {"rollout": {"n": G}},
        }
    )
    return trainer


@pytest.fixture
def tq(monkeypatch: pytest.MonkeyPatch) -> FakeTQ:
    fake = FakeTQ()
    monkeypatch.setattr(transfer_queue, "kv_batch_get", fake.kv_batch_get)
    monkeypatch.setattr(transfer_queue, "kv_batch_put", fake.kv_batch_put)
    return fake


def test_lens_sync_is_registered() -> None:
    assert get_trainer_cls("lens_sync") is LensPPOTrainerSync


def test_lens_sync_advantages_and_metrics(tq: FakeTQ) -> None:
    keys, correct, seq_lp, order = fill(tq, seed=0)
    metrics: dict[str, float] = {}
    make_trainer("lens")._compute_advantage(Meta(keys), metrics)
    expected = compute_advantages(correct, seq_lp, group_size=G, estimator="lens")
    for key, i in zip(keys, order.tolist()):
        adv = tq.rows[key]["advantages"]
        torch.testing.assert_close(adv, torch.full_like(adv, float(expected[i])))
    assert float(expected[order[keys.index("uid1_5_0")]]) == 0.0  # the unjudged row
    diag = group_diagnostics(correct, seq_lp, expected, group_size=G)
    assert metrics.keys() >= diag.keys()
    for name, value in diag.items():
        assert metrics[name] == pytest.approx(value, nan_ok=True), name
    assert metrics["verify/frac_unjudged"] == pytest.approx(1 / (P * G))


def test_lens_sync_leaves_other_estimators_to_verl(tq: FakeTQ) -> None:
    keys, correct, seq_lp, order = fill(tq, seed=1)
    metrics: dict[str, float] = {}
    make_trainer("grpo")._compute_advantage(Meta(keys), metrics)
    # verl's own GRPO scores the unjudged row as the 0.0 it received
    expected = compute_advantages(correct.nan_to_num(0.0), seq_lp, group_size=G, estimator="grpo")
    got = torch.stack([tq.rows[k]["advantages"][0] for k in keys])
    torch.testing.assert_close(got, expected[order].float())
    assert not any(name.startswith("lens/") for name in metrics)
