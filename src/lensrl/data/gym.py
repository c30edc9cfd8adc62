"""Problems from reasoning-gym, the procedural dataset library (``pip install 'lensrl[gym]'``).

``task.source: reasoning_gym`` trains on ``task.datasets`` (reasoning-gym names and weights) at
``task.levels``. Level L sets every difficulty attribute of a dataset's curriculum to its
(L-1)-th value, the top one when the curriculum has fewer, and keeps only that value
(reasoning-gym's ``UPPER_BOUND`` mode): ``chain_sum`` at level 1 is 2 one-digit terms, at level 3
4 three-digit terms. Train and test are split like the built-in task's: by a fixed hash of
the question text, about :data:`lensrl.data.builtin.TEST_PERCENT` % of each dataset and level
is test, so no question is in both splits whatever the seeds. Deterministic in the task
section (``task.seed``), and offline.

Rewards come from :func:`lensrl.verify.verify` against the dataset's answer, as for every
task; :func:`agreement` cross-checks those verdicts against reasoning-gym's own
``score_answer`` (docs/training.md reports it).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from typing import Any

from lensrl.data.builtin import split_of_text
from lensrl.data.problem import DataError, Problem

SOURCE = "reasoning_gym"
_POOL_FACTOR = 8  # items generated per problem asked for (before the split and dedup)


def _rg() -> Any:
    try:
        import reasoning_gym
    except ImportError:
        raise DataError(
            "task.source = reasoning_gym needs reasoning-gym: pip install 'lensrl[gym]'"
        ) from None
    return reasoning_gym


def dataset_config(name: str, level: int, *, seed: int, size: int) -> Any:
    """The reasoning-gym config of dataset ``name`` at lensrl level ``level`` (1-5)."""
    _rg()
    from reasoning_gym.coaching.base_curriculum import DefaultCurriculumContext, RangeAttributeMode
    from reasoning_gym.factory import DATASETS, create_curriculum, has_curriculum

    if name not in DATASETS:
        raise DataError(f"task.datasets: unknown reasoning-gym dataset {name!r}")
    if not has_curriculum(name):
        raise DataError(f"task.datasets: {name!r} has no difficulty curriculum to map levels to")
    curriculum = create_curriculum(name)
    curriculum.set_global_level(level - 1)
    context = DefaultCurriculumContext(mode=RangeAttributeMode.UPPER_BOUND)
    return curriculum.generate_configuration({"seed": seed, "size": size}, context=context)


def _entries(name: str, level: int, split: str, n: int, seed: int) -> list[tuple[Problem, dict]]:
    """``n`` distinct (Problem, reasoning-gym entry) pairs of one dataset, level and split;
    repeated (ids ``#2``, ``#3``...) when the split holds fewer distinct questions."""
    _rg()
    stable = int.from_bytes(hashlib.blake2b(f"{name}/{level}/{seed}".encode(),
                                            digest_size=4).digest(), "big")
    size = max(64, n * _POOL_FACTOR)
    from reasoning_gym.factory import DATASETS

    config = dataset_config(name, level, seed=stable, size=size)
    data = DATASETS[name][0](config=config)
    found: list[tuple[Problem, dict]] = []
    seen: set[str] = set()
    for i in range(size):
        entry = data[i]
        q = entry["question"]
        if q in seen or split_of_text(q) != split:
            continue
        seen.add(q)
        found.append((Problem(id=f"rg/{name}/L{level}/{i}", problem=q, answer=str(entry["answer"]),
                              level=level, subject=name), entry))
        if len(found) == n:
            return found
    if not found:
        raise DataError(f"task.datasets: {name!r} at level {level} has no {split} problems")
    out = list(found)
    k = 1
    while len(out) < n:  # a small space: repeat, as the built-in task does
        k += 1
        for p, e in found[: n - len(out)]:
            out.append((Problem(id=f"{p.id}#{k}", problem=p.problem, answer=p.answer,
                                level=p.level, subject=p.subject), e))
    return out


def _counts(n: int, weights: Sequence[float]) -> list[int]:
    """``n`` split by ``weights`` (largest remainders, so the counts sum to ``n``)."""
    total = sum(weights)
    raw = [n * w / total for w in weights]
    counts = [int(r) for r in raw]
    for i in sorted(range(len(raw)), key=lambda i: counts[i] - raw[i])[: n - sum(counts)]:
        counts[i] += 1
    return counts


def gym_entries(task: Mapping[str, Any], split: str, n: int) -> list[tuple[Problem, dict]]:
    """``n`` (Problem, entry) pairs of ``split`` for a ``task`` section, weighted over
    ``task.datasets`` and balanced over ``task.levels``; shuffled by ``task.seed``."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    datasets = dict(task.get("datasets") or {})
    if not datasets:
        raise DataError("task.source = reasoning_gym needs task.datasets (name: weight)")
    levels = list(task.get("levels") or [1])
    seed = int(task.get("seed", 0))
    cells = [(name, lv) for name in datasets for lv in levels]
    weights = [float(datasets[name]) / len(levels) for name, _ in cells]
    out: list[tuple[Problem, dict]] = []
    for (name, level), count in zip(cells, _counts(n, weights)):
        if count:
            out.extend(_entries(name, level, split, count, seed))
    random.Random(f"lensrl-gym/{split}/{seed}/order").shuffle(out)
    return out


def gym_problems(task: Mapping[str, Any], split: str, n: int) -> list[Problem]:
    """The problems of :func:`gym_entries`."""
    return [p for p, _ in gym_entries(task, split, n)]


def gym_score(name: str, entry: dict, completion: str) -> float:
    """reasoning-gym's own score of a completion: ``score_answer`` of its extracted answer (the
    last ``\\boxed{}``, as lensrl's strict verifier reads it; reasoning-gym's ``<answer>`` tags
    otherwise)."""
    from lensrl.verify.extract import extract_prediction

    rg = _rg()
    answer = extract_prediction(completion, strict=True).answer
    if answer is None:
        answer = rg.utils.extract_answer(completion)
    return float(rg.get_score_answer_fn(name)(answer, entry))


def agreement(pairs: Sequence[tuple[Problem, dict]], completions: Sequence[Sequence[str]], *,
              strict: bool = True) -> dict[str, Any]:
    """How often lensrl's verdict (correct or not) equals reasoning-gym's (``score_answer``
    == 1) on the same completions; ``completions[i]`` are the samples of ``pairs[i]``."""
    from lensrl.verify import verify_batch

    golds, texts, scores = [], [], []
    for (p, entry), samples in zip(pairs, completions, strict=True):
        for text in samples:
            golds.append(p.answer)
            texts.append(text)
            scores.append(gym_score(p.subject or "", entry, text) >= 1.0)
    verdicts = [bool(v.correct) for v in verify_batch(golds, texts, strict=strict)]
    agree = sum(a == b for a, b in zip(verdicts, scores))
    return {"pairs": len(texts), "agree": agree, "rate": agree / len(texts) if texts else None,
            "lensrl_correct": sum(verdicts), "gym_correct": sum(scores),
            "disagreements": [(g, t, v, s) for g, t, v, s in zip(golds, texts, verdicts, scores)
                              if v != s][:20]}
