"""compute_score through verl's own loader and reward manager, "cannot judge" included."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from verl import DataProto
from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager
from verl.trainer.ppo.reward import get_custom_reward_fn

import lensrl.integrations.verl_reward as verl_reward

# (gold, completion, score, judged, why)
CASES = [
    ("4", "2 + 2 = \\boxed{4}", 1.0, True, "right"),
    ("\\frac{1}{2}", "so \\boxed{0.5}", 1.0, True, "right, another form"),
    ("4", "\\boxed{5}", 0.0, True, "wrong"),
    ("4", "The answer is 4", 0.0, True, "strict by default: no boxed answer is wrong"),
    ("", "\\boxed{4}", 0.0, False, "cannot judge: empty gold"),
    ("\\frac{", "\\boxed{4}", 0.0, False, "cannot judge: unparsable gold"),
]


def load(reward_kwargs: dict[str, object] | None = None):  # type: ignore[no-untyped-def]
    """compute_score as verl loads it: by file path, wrapped with reward_kwargs."""
    config = OmegaConf.create(
        {
            "reward": {
                "custom_reward_function": {
                    "path": verl_reward.__file__,
                    "name": "compute_score",
                    "reward_kwargs": reward_kwargs or {},
                }
            }
        }
    )
    fn = get_custom_reward_fn(config)
    assert fn is not None
    return fn


@pytest.mark.parametrize(("gold", "completion", "score", "judged", "why"), CASES)
def test_compute_score_table(
    gold: str, completion: str, score: float, judged: bool, why: str
) -> None:
    out = load()(data_source="math", solution_str=completion, ground_truth=gold, extra_info={})
    assert out["score"] == score, why
    assert out["acc"] == score, why
    assert out["judged"] is judged, why
    assert isinstance(out["pred"], str) and isinstance(out["reason"], str)
    assert set(out) == {"score", "acc", "pred", "judged", "reason"}  # same keys every time


def test_reward_kwargs_reach_the_verifier() -> None:
    out = load({"strict": False})(
        data_source="math", solution_str="The answer is 4", ground_truth="4", extra_info={}
    )
    assert out["score"] == 1.0


class WordTokenizer:
    """Decodes token ids by a fixed table: all NaiveRewardManager needs from a tokenizer."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts

    def decode(self, ids: torch.Tensor, skip_special_tokens: bool = True) -> str:
        return self.texts[int(ids[0])]


@pytest.mark.parametrize(("gold", "completion", "score", "judged", "why"), CASES[2:6:3])
def test_through_verls_reward_manager(
    gold: str, completion: str, score: float, judged: bool, why: str
) -> None:
    """verl's naive reward loop calls compute_score in a thread and keeps the dict as extra info."""
    manager = NaiveRewardManager(
        config=OmegaConf.create({}), tokenizer=WordTokenizer([completion]), compute_score=load()
    )
    data = DataProto.from_dict(
        tensors={
            "prompts": torch.ones(1, 3, dtype=torch.long),
            "responses": torch.zeros(1, 4, dtype=torch.long),
            "attention_mask": torch.ones(1, 7, dtype=torch.long),
        },
        non_tensors={
            "data_source": np.array(["math"], dtype=object),
            "reward_model": np.array([{"ground_truth": gold}], dtype=object),
            "extra_info": np.array([{}], dtype=object),
        },
    )
    result = manager.loop.run_until_complete(manager.run_single(data))
    assert result["reward_score"] == score, why
    assert result["reward_extra_info"]["judged"] is judged, why
    assert result["reward_extra_info"]["acc"] == score, why
