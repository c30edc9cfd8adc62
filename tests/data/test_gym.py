"""reasoning-gym as a task source (lensrl.data.gym): levels map to difficulty, the split is
disjoint and deterministic, training and ``lensrl eval`` build the same held-out set, and
lensrl's verdicts agree with reasoning-gym's own scorer."""

from __future__ import annotations

from dataclasses import asdict

import pytest

pytest.importorskip("reasoning_gym")

from lensrl.data import DataError, ProblemSampler, heldout_problems, train_problems  # noqa: E402
from lensrl.data.gym import agreement, dataset_config, gym_entries, gym_problems  # noqa: E402
from lensrl.eval.cli import load_eval_problems  # noqa: E402
from lensrl.train.config import ConfigError, TaskConfig  # noqa: E402
from lensrl.train.state import load_tasks  # noqa: E402

TASK = {"source": "reasoning_gym", "datasets": {"chain_sum": 3, "products": 1},
        "levels": [1, 2], "seed": 0, "train_problems": 200, "eval_problems": 40}


def test_levels_set_the_difficulty():
    one, three = (dataset_config("chain_sum", lv, seed=0, size=8) for lv in (1, 3))
    assert (one.min_terms, one.max_terms, one.max_digits) == (2, 2, 1)
    assert three.min_terms == three.max_terms > 2 and three.max_digits > 1
    # past the curriculum's last value a level keeps the top one
    assert dataset_config("chain_sum", 5, seed=0, size=8).max_terms >= three.max_terms


def test_split_is_disjoint_deterministic_and_weighted():
    train = train_problems(TASK)
    held = heldout_problems(TASK)
    assert len(train) == 200 and len(held) == 40
    assert not {p.problem for p in train} & {p.problem for p in held}
    assert [p.id for p in train] == [p.id for p in train_problems(dict(TASK))]
    assert [p.id for p in train] != [p.id for p in train_problems({**TASK, "seed": 1})]
    assert sum(p.subject == "chain_sum" for p in train) == 150  # weights 3:1
    assert {p.level for p in held} == {1, 2}
    assert len({p.id for p in train}) == len(train)  # repeats get #k ids
    chain = [p for p in held if p.subject == "chain_sum"]
    assert all(str(eval(p.problem.split(":")[1].rstrip(" ="))) == p.answer for p in chain)


def test_training_and_eval_build_the_same_heldout_set():
    task = TaskConfig(**{k: v for k, v in TASK.items()})
    train, held = load_tasks(task)
    saved = {"task": asdict(task)}
    assert [p.id for p in load_eval_problems(saved, None, None)] == [p.id for p in held]
    assert len(load_eval_problems(saved, None, 10)) == 10
    a, b = ProblemSampler(train, 5), ProblemSampler(train, 5)
    assert [p.id for p in a.take(30)] == [p.id for p in b.take(30)]


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="task.datasets"):
        TaskConfig(source="reasoning_gym")
    with pytest.raises(ConfigError, match="task.source"):
        TaskConfig(source="gym")
    with pytest.raises(DataError, match="no_such_dataset"):
        gym_problems({**TASK, "datasets": {"no_such_dataset": 1}}, "train", 4)


def test_verdicts_agree_with_reasoning_gym_scorer():
    pairs = gym_entries(TASK, "test", 12)
    completions = [[f"\\boxed{{{p.answer}}}", f"\\boxed{{{int(p.answer) + 1}}}", "no answer"]
                   for p, _ in pairs]
    result = agreement(pairs, completions)
    assert result["pairs"] == 36
    assert result["lensrl_correct"] == result["gym_correct"] == 12
    assert result["rate"] == 1.0 and result["disagreements"] == []


def test_the_real_preset_prompts_a_gym_problem_in_the_chat_format():
    from lensrl.data import format_prompt
    from lensrl.train.config import TrainConfig
    from lensrl.train.presets import load_preset

    cfg = TrainConfig.from_dict(load_preset("smollm2"))
    assert cfg.task.source == "reasoning_gym" and cfg.task.datasets
    problem = heldout_problems(asdict(cfg.task), limit=1)[0]
    prompt = format_prompt(problem, template=cfg.task.template)
    assert prompt.endswith(f"<|im_start|>user\n{problem.problem}<|im_end|>\n<|im_start|>assistant\n")
    assert prompt.count("\\boxed{") == 2  # the two worked examples, braces un-doubled
