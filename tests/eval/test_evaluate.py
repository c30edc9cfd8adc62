"""evaluate() with a fake generator and verifier; the eval JSON on disk; `lensrl eval`."""

from __future__ import annotations

import contextlib
import json
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lensrl.cli import main
from lensrl.data import sampler
from lensrl.eval import eval_steps, evaluate, read_eval, summary_metrics, write_eval
from lensrl.eval.evaluate import stream_seed


@dataclass(frozen=True)
class FakeProblem:
    id: str
    problem: str
    answer: str
    level: int | None
    subject: str = "algebra"
    solution: str = ""


@dataclass(frozen=True)
class FakeVerdict:
    correct: bool | None
    reason: str = ""


PROBLEMS = [FakeProblem(f"p{i}", f"what is {i}?", str(i), level=1 + i % 5) for i in range(7)]


class FakeGenerator:
    """Problem i is answered right by the first i samples; '?' for one sample of problem 3."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(
        self, model: Any, tokenizer: Any, prompts: list[str], **kw: Any
    ) -> list[list[str]]:
        self.calls.append({"prompts": prompts, **kw})
        out = []
        for prompt in prompts:
            i = int(prompt.split()[-1].rstrip("?"))
            texts = [str(i) if s < i else "wrong" for s in range(kw["n"])]
            if i == 3:
                texts[-1] = "?"
            out.append(texts)
        return out


def fake_verify(golds: list[str], preds: list[str], **_: Any) -> list[FakeVerdict]:
    return [FakeVerdict(None if p == "?" else g == p) for g, p in zip(golds, preds, strict=True)]


def run_eval(**kw: Any) -> tuple[dict[str, Any], FakeGenerator]:
    gen = FakeGenerator()
    args: dict[str, Any] = dict(
        prompts=[p.problem for p in PROBLEMS],
        samples=4,
        max_new_tokens=8,
        seed=10,
        batch_prompts=3,
        resamples=100,
        generate=gen,
        verify=fake_verify,
    )
    args.update(kw)
    return evaluate(None, None, PROBLEMS, **args), gen


def test_counts_per_problem_and_unjudged() -> None:
    result, gen = run_eval()
    counts = [(p["id"], p["n"], p["c"], p["unjudged"]) for p in result["problems"]]
    assert counts == [
        ("p0", 4, 0, 0),
        ("p1", 4, 1, 0),
        ("p2", 4, 2, 0),
        ("p3", 4, 3, 1),
        ("p4", 4, 4, 0),
        ("p5", 4, 4, 0),
        ("p6", 4, 4, 0),
    ]
    # p3: 3 right and its 4th sample unjudged: in n, not in c.
    assert result["unjudged"] == 1 and result["samples_total"] == 28
    assert [len(c["prompts"]) for c in gen.calls] == [3, 3, 1]
    assert [c["seed"] for c in gen.calls] == [stream_seed(10, 0, i) for i in range(3)]
    assert all(c["temperature"] == 1.0 and c["top_p"] == 1.0 for c in gen.calls)
    assert set(result["pass_at_k"]["all"]) == {"1", "2", "4"}  # k ≤ n = 4
    assert result["pass_at_k"]["all"]["1"]["mean"] == pytest.approx(18 / 28)  # 0+1+2+3+4+4+4
    assert result["pass_at_k"]["levels_4-5"]["1"]["problems"] == 2  # p3 (L4), p4 (L5)


def test_streams_are_distinct_per_seed_step_and_chunk() -> None:
    # Formerly seed + step + chunk: run seed 0 chunk 1 drew run seed 1 chunk 0's stream.
    assert stream_seed(0, 0, 1) != stream_seed(1, 0, 0)
    grid = [stream_seed(s, t, c) for s in range(6) for t in (0, 50, 100) for c in range(6)]
    assert len(set(grid)) == len(grid) and all(0 <= x < 2**63 for x in grid)
    assert stream_seed(3, 50, 2) == stream_seed(3, 50, 2)
    _, gen = run_eval(step=50)
    assert [c["seed"] for c in gen.calls] == [stream_seed(10, 50, i) for i in range(3)]
    with pytest.raises(ValueError, match="seed and step"):
        run_eval(seed=-1)


def test_is_reproducible() -> None:
    assert run_eval()[0] == run_eval()[0]


def test_rejects_misaligned_prompts() -> None:
    with pytest.raises(ValueError, match="prompts"):
        run_eval(prompts=["only one"])


def test_summary_metrics_keys() -> None:
    metrics = summary_metrics(run_eval()[0])
    assert metrics["eval/pass@1"] == pytest.approx(18 / 28)
    assert "eval/pass@4/level_3" in metrics and "eval/pass@1/levels_4-5" in metrics
    assert metrics["eval/unjudged_frac"] == pytest.approx(1 / 28)
    assert all(isinstance(v, float) for v in metrics.values())


def test_write_and_read_eval(tmp_path: Path) -> None:
    result, _ = run_eval()
    for step in (2, 10, 1):
        path = write_eval(tmp_path, step, result)
    assert path == tmp_path / "eval" / "1.json"
    assert sorted(p.name for p in (tmp_path / "eval").iterdir()) == ["1.json", "10.json", "2.json"]
    assert eval_steps(tmp_path) == [1, 2, 10]
    latest = read_eval(tmp_path)
    assert latest["step"] == 10 and latest["problems"] == result["problems"]
    assert read_eval(tmp_path, 2)["step"] == 2
    with pytest.raises(FileNotFoundError):
        read_eval(tmp_path, 3)
    with pytest.raises(FileNotFoundError):
        read_eval(tmp_path / "nowhere")


def test_write_eval_leaves_nothing_on_failure(tmp_path: Path) -> None:
    write_eval(tmp_path, 5, {"ok": 1})
    with pytest.raises(TypeError):
        write_eval(tmp_path, 5, {"bad": object()})
    assert [p.name for p in (tmp_path / "eval").iterdir()] == ["5.json"]
    assert json.loads((tmp_path / "eval" / "5.json").read_text()) == {"ok": 1, "step": 5}


def test_cli_eval_on_a_fake_checkpoint(
    make_run: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = make_run("grpo-0", estimator="grpo", seed=7)
    cfg = json.loads((run_dir / "config.json").read_text())
    seen: dict[str, Any] = {}

    def builtin_problems(split: str, n: int, *, seed: int = 0, levels: Any = ()) -> list[Any]:
        seen.update(split=split, n=n, seed=seed, levels=tuple(levels))
        return PROBLEMS[:n]

    fakes = {
        "lensrl.policy": {"load_checkpoint": lambda d, step=None: ("model", "tok", 40, cfg),
                          "select_dtype": lambda requested, device: (None, "fake"),
                          "autocast": lambda device, dtype: contextlib.nullcontext()},
        "lensrl.data": {  # the real held-out rule, over stand-in built-in problems
            "heldout_problems": sampler.heldout_problems,
            "format_prompt": lambda p, tok=None, *, template=None: p.problem,
        },
        "lensrl.rollout": {"sample_completions": (gen := FakeGenerator())},
        "lensrl.verify": {"verify_batch": fake_verify},
    }
    monkeypatch.setattr(sampler, "builtin_problems", builtin_problems)
    for name, attrs in fakes.items():
        monkeypatch.setitem(sys.modules, name, types.SimpleNamespace(**attrs))
    assert main(["eval", "--run-dir", str(run_dir), "--samples", "2", "--resamples", "50"]) == 0
    assert seen == {"split": "test", "n": 8, "seed": 0, "levels": (1, 2, 3, 4, 5)}
    result = read_eval(run_dir)
    assert result["step"] == 40 and len(result["problems"]) == 7
    assert result["run"] == {"name": "grpo-0", "seed": 7, "estimator": "grpo", "data": "builtin"}
    # The run's own seed and the checkpoint's step pick the streams (not a shared --seed 0).
    assert result["sampling"]["seed"] == 7
    assert [c["seed"] for c in gen.calls] == [stream_seed(7, 40, 0)]
    assert set(result["pass_at_k"]["all"]) == {"1", "2"}
    assert "wrote" in capsys.readouterr().out
    # beside training (which holds the run folder's lock, here in this very process): an
    # evaluation reads a whole checkpoint and writes under the eval/ folder's own lock
    from lensrl.runs import RunLock

    with RunLock(run_dir):
        assert main(["eval", "--run-dir", str(run_dir), "--samples", "2", "--name", "again"]) == 0
    assert read_eval(run_dir, 40, "again")["problems"] == result["problems"]
