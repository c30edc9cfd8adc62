"""A run's problems (lensrl.data.sampler): training and ``lensrl eval`` build the same held-out
split from the same ``task`` fields, and the sampler is a pure function of its seed."""

from __future__ import annotations

from dataclasses import asdict

from lensrl.data import ProblemSampler, builtin_problems, heldout_problems, train_problems
from lensrl.eval.cli import load_eval_problems
from lensrl.train.config import TaskConfig
from lensrl.train.state import load_tasks

from .test_loading import MATH, write_jsonl


def test_training_and_eval_build_the_same_heldout_split():
    task = TaskConfig(levels=[2, 4], eval_problems=30, seed=3)
    _, held = load_tasks(task)
    saved = {"task": asdict(task)}  # what eval reads back from config.json
    assert [p.id for p in load_eval_problems(saved, None, None)] == [p.id for p in held]
    assert [p.id for p in held] == [p.id for p in builtin_problems("test", 30, seed=3,
                                                                    levels=(2, 4))]
    assert {p.level for p in held} == {2, 4}
    # --limit: that many problems, still balanced over the run's levels
    assert len(load_eval_problems(saved, None, 10)) == 10


def test_no_periodic_eval_means_no_heldout_set_in_training_but_a_default_one_in_eval():
    task = asdict(TaskConfig(eval_problems=0))
    assert heldout_problems(task) == []
    assert len(load_eval_problems({"task": task}, None, None)) == 500


def test_file_datasets_use_eval_dataset_and_eval_problems(tmp_path):
    path = str(write_jsonl(tmp_path / "math.jsonl", MATH))
    task = {"dataset": path, "eval_dataset": path, "eval_problems": 1}
    assert len(train_problems(task)) == len(MATH)
    assert len(heldout_problems(task)) == 1
    assert len(heldout_problems(task, data=path)) == len(MATH)  # --data: all of it
    assert heldout_problems({"dataset": path}) == []  # no held-out file named


def test_sampler_is_a_function_of_its_seed_and_position():
    problems = list(range(7))
    a, b = ProblemSampler(problems, seed=1), ProblemSampler(problems, seed=1)
    first = a.take(10)  # crosses an epoch
    assert first == b.take(10) and sorted(first[:7]) == problems
    state = a.state_dict()
    more = a.take(5)
    c = ProblemSampler(problems, seed=1)
    c.load_state_dict(state)
    assert c.take(5) == more
    assert ProblemSampler(problems, seed=2).take(7) != first[:7]
