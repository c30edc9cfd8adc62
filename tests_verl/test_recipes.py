"""The recipes' Hydra overrides exist in verl 0.9.1's own ppo_trainer config (struct mode)."""

from __future__ import annotations

import re
from pathlib import Path

import verl.trainer.main_ppo as main_ppo
from hydra import compose, initialize_config_dir

RECIPE = Path(__file__).parent.parent / "recipes" / "verl" / "lens_math.sh"
SMOKE = RECIPE.with_name("gpu_smoke.sh")
VALUES = {
    "ADV_ESTIMATOR": "lens",
    "ALPHA": "0.25",
    "MODEL": "Qwen/Qwen2.5-3B",
    "DATA_DIR": "/data",
    "REWARD_FILE": "/r.py",
    "LR": "1e-6",
    "EXPERIMENT": "lens-test",
}


def recipe_overrides(text: str | None = None) -> list[str]:
    text = RECIPE.read_text() if text is None else text
    body = text.split("python -m verl.trainer.main_ppo \\\n", 1)[1].split('"$@"', 1)[0]
    overrides = [line.strip().rstrip("\\").strip() for line in body.splitlines() if line.strip()]

    def expand(match: re.Match[str]) -> str:
        return VALUES.get(match.group(1), "1")  # counts (NNODES, STEPS, ...)

    return [
        re.sub(r"\$\{?(\w+)\}?", expand, o).replace('"', "").replace("'", '"') for o in overrides
    ]


def test_lens_recipe_composes_against_verls_config() -> None:
    overrides = recipe_overrides()
    assert len(overrides) > 30
    config_dir = str(Path(main_ppo.__file__).parent / "config")
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        cfg = compose(config_name="ppo_trainer", overrides=overrides)
    assert cfg.algorithm.adv_estimator == "lens"
    assert cfg.algorithm.lens_alpha == 0.25
    assert cfg.trainer.v1.trainer_mode == "lens_sync"
    assert cfg.actor_rollout_ref.rollout.n == 16
    assert (
        cfg.data.train_batch_size == 128 and cfg.actor_rollout_ref.actor.ppo_mini_batch_size == 32
    )
    assert cfg.actor_rollout_ref.actor.use_kl_loss is False
    assert cfg.reward.custom_reward_function.name == "compute_score"


def test_gpu_smoke_overrides_compose_on_top_of_the_recipe() -> None:
    """gpu_smoke.sh passes extra overrides to lens_math.sh: a typo there would fail only on a GPU."""
    text = SMOKE.read_text()
    extra = text.split("bash recipes/verl/lens_math.sh \\\n", 1)[1].split(" 2>&1", 1)[0]
    smoke = recipe_overrides("python -m verl.trainer.main_ppo \\\n" + extra + '"$@"')
    assert len(smoke) > 10
    config_dir = str(Path(main_ppo.__file__).parent / "config")
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        cfg = compose(config_name="ppo_trainer", overrides=recipe_overrides() + smoke)
    assert cfg.actor_rollout_ref.rollout.n == 4
    assert cfg.data.train_batch_size == 8
    assert cfg.trainer.val_before_train is False
