"""LensGRPOTrainer on a tiny offline Llama: parity with lensrl.core under TRL's options."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("trl")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402
from trl_testkit import (  # noqa: E402
    always_zero,
    config_kwargs,
    contains_one,
    length_bonus,
    reference_mean_logprob,
    tiny_dataset,
    tiny_model,
    tiny_tokenizer,
)

import lensrl.integrations.trl as lens_trl  # noqa: E402
from lensrl.core import compute_advantages  # noqa: E402
from lensrl.integrations.trl import LensGRPOConfig, LensGRPOTrainer  # noqa: E402


class Recorder(LensGRPOTrainer):
    """Records every generation batch with an independent π_old confidence, taken at once."""

    records: list[dict[str, Any]]

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        out = super()._generate_and_score_completions(inputs)
        assert self._lens_rewards_per_func is not None
        self.records.append(
            {
                "out": {k: v for k, v in out.items() if isinstance(v, torch.Tensor)},
                "rewards": self._lens_rewards_per_func.clone(),
                "ref_lp": reference_mean_logprob(self.model, out),
                "logged": torch.tensor(list(self._logs["advantages"])),
            }
        )
        return out


def _train(
    reward_funcs: Any, trainer_cls: type = Recorder, model_dir: Path | None = None, **overrides: Any
) -> Any:
    """One short run; with ``model_dir`` the model goes through disk (TRL loads β's reference)."""
    tokenizer = tiny_tokenizer()
    model: Any = tiny_model(tokenizer)
    if model_dir is not None:
        model.save_pretrained(model_dir)
        model = str(model_dir)
    config_cls = LensGRPOConfig if issubclass(trainer_cls, LensGRPOTrainer) else GRPOConfig
    trainer = trainer_cls(
        model=model,
        reward_funcs=reward_funcs,
        args=config_cls(**config_kwargs(**overrides)),
        train_dataset=tiny_dataset(),
        processing_class=tokenizer,
    )
    trainer.records = []
    trainer.train()
    return trainer


def _expected(record: dict[str, Any], column: int = 0, **kwargs: Any) -> torch.Tensor:
    return compute_advantages(
        record["rewards"][:, column],
        record["ref_lp"],
        group_size=4,
        std_ddof=1,
        eps=1e-4,
        **kwargs,
    ).float()


def _group_types(record: dict[str, Any], column: int = 0) -> set[str]:
    right = record["rewards"][:, column].reshape(-1, 4).sum(-1)
    return {"negative" if r == 0 else "positive" if r == 4 else "mixed" for r in right.tolist()}


def test_advantages_equal_core_and_are_logged() -> None:
    trainer = _train(contains_one, per_device_train_batch_size=32)
    (record,) = trainer.records
    assert _group_types(record) >= {"negative", "mixed"}  # both LENS cases are exercised
    expected = _expected(record)
    torch.testing.assert_close(record["out"]["advantages"], expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(record["logged"], expected, rtol=1e-4, atol=1e-5)
    logged = trainer.state.log_history[0]
    for key in ("lens/D_mean", "lens/adv_share_negative", "groups/frac_negative"):
        assert key in logged
    assert logged["groups/frac_negative"] > 0 and logged["lens/adv_share_negative"] > 0


def test_grpo_estimator_reproduces_trl(monkeypatch: pytest.MonkeyPatch) -> None:
    parent = GRPOTrainer._generate_and_score_completions
    trl_advantages: list[torch.Tensor] = []

    def spy(self: Any, inputs: Any) -> Any:
        out = parent(self, inputs)
        trl_advantages.append(out["advantages"].clone())
        return out

    monkeypatch.setattr(GRPOTrainer, "_generate_and_score_completions", spy)
    trainer = _train(contains_one, lens_estimator="grpo")
    (record,) = trainer.records
    torch.testing.assert_close(record["out"]["advantages"], trl_advantages[0])


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"num_iterations": 2, "max_steps": 2}, id="num_iterations"),
        pytest.param(
            {"steps_per_generation": 2, "per_device_train_batch_size": 8, "max_steps": 2},
            id="buffered",
        ),
        pytest.param(
            {"mask_truncated_completions": True, "max_completion_length": 4}, id="mask_truncated"
        ),
        pytest.param(
            {"mask_truncated_completions": True, "num_iterations": 2, "max_completion_length": 4},
            id="mask_truncated_off_policy",
        ),
        pytest.param({"beta": 0.1}, id="beta"),
    ],
)
def test_parity_under_trl_options(options: dict[str, Any], tmp_path: Path) -> None:
    model_dir = tmp_path / "model" if options.get("beta") else None
    trainer = _train(contains_one, model_dir=model_dir, **options)
    (record,) = trainer.records  # one generation per batch, reused by every step
    out = record["out"]
    if options.get("num_iterations", 1) > 1:
        assert "old_per_token_logps" in out  # TRL's own π_old log-probs were reused
    if options.get("mask_truncated_completions"):
        assert bool((out["completion_mask"].sum(-1) == 0).any())  # some were truncated
    if options.get("beta"):
        assert "ref_per_token_logps" in out
    torch.testing.assert_close(out["advantages"], _expected(record), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("options", "trl_computes"),
    [
        pytest.param({}, False, id="default"),
        pytest.param({"temperature": 0.7}, False, id="temperature"),
        pytest.param({"top_p": 0.9, "top_k": 5}, False, id="top_p_top_k"),
        pytest.param({"steps_per_generation": 2, "per_device_train_batch_size": 8,
                      "max_steps": 2}, True, id="buffered"),  # TRL computes π_old itself
    ],
)
def test_confidence_from_the_sampler_or_one_forward(
    options: dict[str, Any], trl_computes: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On-policy TRL computes no π_old: the adapter records it from ``generate``'s own logits
    (before top-k / top-p / suppressed tokens, which change how a token is drawn, not π_old's
    probability of it), with no extra forward. Buffered TRL computes π_old itself. Either way
    the confidence equals an independent forward at T."""
    forwards: list[bool] = []
    parent = LensGRPOTrainer._get_per_token_logps_and_entropies

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        forwards.append(torch.is_grad_enabled())
        return parent(self, *args, **kwargs)

    monkeypatch.setattr(LensGRPOTrainer, "_get_per_token_logps_and_entropies", counting)
    temperature = options.get("temperature", 1.0)

    class Checker(Recorder):
        def _local_mean_logprob(self, out: dict[str, Any], mode: str) -> torch.Tensor:
            assert self._lens_sampled_logps is not None  # recorded during generate
            assert ("old_per_token_logps" in out) == trl_computes
            got = super()._local_mean_logprob(out, mode)
            want = reference_mean_logprob(self.model, out, temperature=temperature)
            torch.testing.assert_close(got, want, rtol=0, atol=2e-5)
            self.records.append({"checked": True})
            return got

    trainer = _train(contains_one, trainer_cls=Checker, **options)
    assert any(r.get("checked") for r in trainer.records)
    generations = sum(1 for r in trainer.records if r.get("checked"))
    # no-grad forwards: none of the adapter's own; TRL's π_old when it buffers
    assert forwards.count(False) == (generations if trl_computes else 0)


def test_only_the_correctness_reward_shapes_advantages() -> None:
    with pytest.warns(UserWarning, match="length_bonus"):
        trainer = _train([length_bonus, contains_one], lens_correctness_reward="contains_one")
    (record,) = trainer.records
    expected = _expected(record, column=1)
    torch.testing.assert_close(record["out"]["advantages"], expected, rtol=1e-4, atol=1e-5)


def _init(reward_funcs: Any, **overrides: Any) -> LensGRPOTrainer:
    tokenizer = tiny_tokenizer()
    return LensGRPOTrainer(
        model=tiny_model(tokenizer),
        reward_funcs=reward_funcs,
        args=LensGRPOConfig(**config_kwargs(**overrides)),
        train_dataset=tiny_dataset(),
        processing_class=tokenizer,
    )


def test_correctness_reward_resolution() -> None:
    def accuracy_reward(completions: list[str], **kwargs: Any) -> list[float]:
        return contains_one(completions)

    with pytest.warns(UserWarning):
        assert _init([length_bonus, accuracy_reward])._lens_correct_index == 1
    with pytest.raises(ValueError, match="lens_correctness_reward"):
        _init([length_bonus, contains_one])
    with pytest.raises(ValueError, match="not a reward function"):
        _init(contains_one, lens_correctness_reward="nope")


def test_non_binary_correctness_is_rejected() -> None:
    with pytest.raises(ValueError, match="1.0, 0.0 or None"):
        _train(length_bonus)


def test_all_wrong_groups_train_only_under_lens() -> None:
    """Every group all wrong: GRPO has no signal at all, LENS still moves the policy."""
    results = {}
    for name, cls in (("grpo", GRPOTrainer), ("lens", LensGRPOTrainer)):
        tokenizer = tiny_tokenizer()
        model = tiny_model(tokenizer)
        before = [p.detach().clone() for p in model.parameters()]
        config_cls = LensGRPOConfig if cls is LensGRPOTrainer else GRPOConfig
        trainer = cls(
            model=model,
            reward_funcs=always_zero,
            args=config_cls(**config_kwargs(max_steps=2)),
            train_dataset=tiny_dataset(),
            processing_class=tokenizer,
        )
        trainer.train()
        change = max(
            (p.detach() - b).abs().max().item() for p, b in zip(model.parameters(), before)
        )
        results[name] = (change, trainer.state.log_history[0])
    assert results["grpo"][0] == 0.0
    assert results["lens"][0] > 1e-4
    logged = results["lens"][1]
    assert logged["groups/frac_negative"] == 1.0
    assert logged["lens/adv_share_negative"] == 1.0
    assert math.isfinite(logged["lens/D_mean"]) and "lens/D_mean" not in results["grpo"][1]


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"scale_rewards": "batch"}, "batch"),
        ({"scale_rewards": "none"}, "scale_rewards='group'"),
        ({"lens_estimator": "dr_grpo"}, "scale_rewards='none'"),
        ({"lens_estimator": "ppo"}, "lens_estimator"),
        ({"lens_alpha": -0.1}, "lens_alpha"),
        ({"lens_d_floor": 1.0}, "lens_d_floor"),
        ({"multi_objective_aggregation": "normalize_then_sum"}, "multi_objective_aggregation"),
    ],
)
def test_config_errors(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LensGRPOConfig(**config_kwargs(**overrides))


def test_config_defaults_are_the_paper_and_trl() -> None:
    config = LensGRPOConfig(**config_kwargs())
    assert (config.lens_estimator, config.lens_alpha, config.lens_d_floor) == ("lens", 0.25, 2.0)
    assert config.scale_rewards == "group" and config.loss_type == "dapo"
    assert LensGRPOConfig(**config_kwargs(lens_estimator="dr_grpo", scale_rewards="none"))


def test_plain_grpo_config_is_rejected() -> None:
    tokenizer = tiny_tokenizer()
    with pytest.raises(TypeError, match="LensGRPOConfig"):
        LensGRPOTrainer(
            model=tiny_model(tokenizer),
            reward_funcs=contains_one,
            args=GRPOConfig(**config_kwargs()),
            train_dataset=tiny_dataset(),
            processing_class=tokenizer,
        )


def test_trl_version_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    import trl

    monkeypatch.setattr(trl, "__version__", "9.0.0")
    monkeypatch.delenv("LENSRL_ALLOW_ANY_TRL", raising=False)
    with pytest.raises(ImportError, match="supports trl>="):
        lens_trl.check_trl()
    monkeypatch.setenv("LENSRL_ALLOW_ANY_TRL", "1")
    with pytest.warns(UserWarning, match="supports trl>="):
        lens_trl.check_trl()


def test_accuracy_reward() -> None:
    verify = pytest.importorskip("lensrl.verify")
    if not hasattr(verify, "verify_batch"):
        pytest.skip("lensrl.verify is not there yet")
    completions = [
        "The answer is \\boxed{4}.",
        "\\boxed{5}",
        "The answer is 4.",  # strict: only a boxed answer counts
        [{"role": "assistant", "content": "so \\boxed{2+2}"}],
    ]
    rewards = lens_trl.accuracy_reward(completions, answer=["4", "4", "4", "4"])
    assert rewards == [1.0, 0.0, 0.0, 1.0]
    assert lens_trl.accuracy_reward(["\\boxed{4}"], answer=[None]) == [None]
    assert lens_trl.accuracy_reward(["\\boxed{4}"], solution=["4"]) == [1.0]
    with pytest.raises(ValueError, match="answer"):
        lens_trl.accuracy_reward(["\\boxed{4}"])
