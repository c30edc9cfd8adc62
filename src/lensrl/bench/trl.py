"""What LENS costs inside TRL, and TRL's own throughput, on tiny CPU models.

- :func:`measure_trl_lens_overhead`: ``LensGRPOTrainer`` step time ÷ ``GRPOTrainer`` step time
  on the same tiny model, data, seed and config (goal ≤ 1.15). The two trainers take turns in
  short runs (ABBA order) so machine noise hits both; per-step medians are compared.
- :func:`measure_trl_throughput`: TRL ``GRPOTrainer`` trained tokens per second on a model the
  caller builds, so a benchmark can put lensrl's own trainer next to TRL on the same work.

Run both: ``python -m lensrl.bench.trl --out FILE [--full]`` (needs ``lensrl[trl]``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from lensrl.bench.common import GOALS

OVERHEAD_GOAL = GOALS["trl_lens_step_overhead"][1]
_ALPHABET = "0123456789+= "

# quick: ~1 min on a 2-core CPU; full: a larger model, longer completions, more rounds.
_QUICK: dict[str, Any] = dict(
    size="nano", prompts=4, group_size=8, max_completion_length=32, rounds=20
)
_FULL: dict[str, Any] = dict(
    size="tiny", prompts=8, group_size=8, max_completion_length=64, rounds=16
)


def _last_digit_reward(
    completions: list[str], answer: list[str], **kwargs: Any
) -> list[float | None]:
    """Binary: the completion contains the answer's last digit (mixed and all-wrong groups)."""
    return [1.0 if a[-1] in c else 0.0 for c, a in zip(completions, answer)]


def _addition_dataset(n: int, seed: int = 0) -> Any:
    from datasets import Dataset

    rng = random.Random(seed)
    pairs = [(rng.randrange(100), rng.randrange(100)) for _ in range(n)]
    return Dataset.from_dict(
        {"prompt": [f"{a}+{b}=" for a, b in pairs], "answer": [str(a + b) for a, b in pairs]}
    )


def _base_config(output_dir: str, **overrides: Any) -> dict[str, Any]:
    """GRPOConfig kwargs for CPU timing runs: no logging, no checkpoints, fp32."""
    kwargs: dict[str, Any] = dict(
        output_dir=output_dir,
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        report_to=[],
        logging_strategy="no",
        save_strategy="no",
        disable_tqdm=True,
        dataloader_num_workers=0,
        learning_rate=1e-6,
        seed=0,
    )
    kwargs.update(overrides)
    return kwargs


def _step_timer() -> Any:
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        """Wall and CPU time of each optimizer step (generation, scoring, loss, update)."""

        def __init__(self) -> None:
            self.times: list[float] = []
            self.cpu_times: list[float] = []
            self._start = (0.0, 0.0)

        def on_step_begin(self, *args: Any, **kwargs: Any) -> None:
            self._start = (time.perf_counter(), time.process_time())

        def on_step_end(self, *args: Any, **kwargs: Any) -> None:
            self.times.append(time.perf_counter() - self._start[0])
            self.cpu_times.append(time.process_time() - self._start[1])

    return StepTimer()


def _environment() -> dict[str, Any]:
    import trl

    from lensrl.bench.common import machine

    return {**machine(), "trl": trl.__version__}


def measure_trl_lens_overhead(*, quick: bool = True, threads: int | None = 1) -> dict[str, Any]:
    """``LensGRPOTrainer`` ÷ ``GRPOTrainer`` median step time on the same work.

    Both trainers get the same tiny Llama (same seed), the same prompts (each run restarts
    the data loader), reward and config; completions are forced to full length
    (``min_new_tokens``) so both do the same work every step. The trainers alternate one step
    at a time in ABBA order. On-policy TRL skips π_old log-probs; LENS needs them, so its
    extra cost is mostly one no-grad forward pass per generation batch.

    Returns ``trl_lens_step_overhead``, the headline: the median over rounds of the ratio of
    the LENS step to the GRPO step run next to it (adjacent steps share the machine's load, so
    this survives a busy shared machine best); the per-step median wall times of both and
    their ratio (``ratio_of_medians``); the same on CPU time; and ``trl_lens_added_fraction``,
    the wall time of LENS's own work (``LensGRPOTrainer._apply_lens``) over the median GRPO
    step, a component estimate of the same overhead.

    ``threads`` sets torch's thread count for the measurement (restored after); the default 1
    keeps the ratio stable on a shared machine, where two spinning OpenMP threads competing
    with other processes made the same step vary from 1 s to 20 s. ``None`` leaves it as is.
    """
    from lensrl.integrations.trl import LensGRPOTrainer

    added: list[float] = []

    class TimedLens(LensGRPOTrainer):
        def _apply_lens(self, out: dict[str, Any]) -> dict[str, Any]:
            start = time.perf_counter()
            result = super()._apply_lens(out)
            added.append(time.perf_counter() - start)
            return result

    spec = _QUICK if quick else _FULL
    G, T = int(spec["group_size"]), int(spec["max_completion_length"])
    dataset = _addition_dataset(256)
    saved_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _interleaved(spec, G, T, dataset, added, TimedLens, quick)
    finally:
        torch.set_num_threads(saved_threads)


def _interleaved(
    spec: dict[str, Any],
    G: int,
    T: int,
    dataset: Any,
    added: list[float],
    lens_cls: Any,
    quick: bool,
) -> dict[str, Any]:
    """The ABBA loop of :func:`measure_trl_lens_overhead`."""
    from lensrl.bench.common import abba

    with tempfile.TemporaryDirectory() as tmp:
        trainers, timers = _grpo_and_lens(spec, G, T, dataset, lens_cls, Path(tmp))
        for name in ("grpo", "lens"):  # warm-up step, not counted
            trainers[name].train()
            timers[name].times.clear()
            timers[name].cpu_times.clear()
        added.clear()
        t0 = time.perf_counter()
        for r in range(int(spec["rounds"])):
            for name in abba(("grpo", "lens"), r):
                trainers[name].train()
        elapsed = time.perf_counter() - t0
        environment = _environment()
    grpo, lens = timers["grpo"].times, timers["lens"].times
    median = statistics.median
    ratio = median(b / a for a, b in zip(grpo, lens))  # paired: same round, same load
    return {
        "trl_lens_step_overhead": ratio,
        "goal": OVERHEAD_GOAL,
        "meets_goal": ratio <= OVERHEAD_GOAL,
        "ratio_of_medians": median(lens) / median(grpo),
        "ratio_of_medians_cpu": median(timers["lens"].cpu_times) / median(timers["grpo"].cpu_times),
        "trl_lens_added_fraction": median(added) / median(grpo),
        "lens_added_s_median": median(added),
        "grpo_step_s_median": median(grpo),
        "lens_step_s_median": median(lens),
        "grpo_step_s": grpo,
        "lens_step_s": lens,
        "steps_per_trainer": len(grpo),
        "setup": {**spec, "completions_per_step": int(spec["prompts"]) * G, "quick": quick},
        "elapsed_s": elapsed,
        "environment": environment,
    }


def _grpo_and_lens(spec: dict[str, Any], G: int, T: int, dataset: Any, lens_cls: Any,
                   tmp: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """TRL's ``GRPOTrainer`` and ``lens_cls`` on the same tiny model (same seed), data, reward
    and config, one step per ``train()``, each with its step timer: ``(trainers, timers)``."""
    from transformers import PrinterCallback
    from trl.trainer.grpo_config import GRPOConfig
    from trl.trainer.grpo_trainer import GRPOTrainer

    from lensrl.integrations.trl import LensGRPOConfig
    from lensrl.policy import build_tiny

    trainers: dict[str, Any] = {}
    timers: dict[str, Any] = {}
    for name, trainer_cls, config_cls in (
        ("grpo", GRPOTrainer, GRPOConfig),
        ("lens", lens_cls, LensGRPOConfig),
    ):
        model, tokenizer = build_tiny(str(spec["size"]), _ALPHABET, seed=0)
        config = config_cls(
            **_base_config(
                str(tmp / name),
                per_device_train_batch_size=int(spec["prompts"]) * G,
                num_generations=G,
                max_completion_length=T,
                max_steps=1,
                generation_kwargs={"min_new_tokens": T},
            )
        )
        timers[name] = _step_timer()
        trainers[name] = trainer_cls(
            model=model,
            reward_funcs=_last_digit_reward,
            args=config,
            train_dataset=dataset,
            processing_class=tokenizer,
            callbacks=[timers[name]],
        )
        trainers[name].remove_callback(PrinterCallback)
    return trainers, timers


def measure_trl_throughput(
    *,
    model_factory: Callable[[], tuple[Any, Any]],
    prompts: Sequence[str],
    group_size: int,
    max_completion_length: int,
    passes: int,
    steps: int,
) -> dict[str, Any]:
    """TRL ``GRPOTrainer`` trained completion tokens per second on the caller's model.

    Args:
        model_factory: returns ``(model, tokenizer)``; called once.
        prompts: every rollout samples ``group_size`` completions for each of these prompts.
        group_size: ``G`` (TRL ``num_generations``).
        max_completion_length: new-token limit per completion.
        passes: optimizer steps on each rollout batch (TRL ``num_iterations``); each pass is
            one step over the whole batch (``len(prompts)·G`` completions).
        steps: rollouts timed; one extra rollout before them warms up and is not counted.

    Trained tokens count the completion tokens of every rollout once per pass (the tokens
    the loss sees); the time is the wall time of the timed optimizer steps, generation
    included. Reward is a trivial binary function, so verification cost is not in it.
    """
    if steps < 1 or passes < 1:
        raise ValueError(f"steps and passes must be >= 1, got steps={steps}, passes={passes}")
    with TrlStepper(model_factory=model_factory, prompts=prompts, group_size=group_size,
                    max_completion_length=max_completion_length, passes=passes) as trl:
        for _ in range(steps + 1):  # the first rollout warms up
            trl.step()
    counts, timer = trl.counts, trl.timer
    timed = timer.times[passes:]  # drop the warm-up rollout's steps
    tokens = sum(counts[1:]) * passes
    seconds = sum(timed)
    # per rollout: its tokens × passes over the time of its passes (robust to one slow step)
    per_rollout = [
        counts[1 + i] * passes / sum(timed[i * passes : (i + 1) * passes])
        for i in range(len(timed) // passes)
    ]
    return {
        "framework": "trl",
        "trl_tokens_per_s": tokens / seconds,
        "tokens_per_s_per_rollout": per_rollout,
        "step_s": timed,
        "trained_tokens": tokens,
        "seconds": seconds,
        "step_s_median": statistics.median(timed),
        "rollouts": len(counts) - 1,
        "optimizer_steps": len(timed),
        "setup": {
            "prompts": len(prompts),
            "group_size": group_size,
            "max_completion_length": max_completion_length,
            "passes": passes,
            "steps": steps,
        },
        "environment": _environment(),
    }


class TrlStepper:
    """A TRL ``GRPOTrainer`` run one rollout (and its ``passes`` optimizer steps, TRL
    ``num_iterations``) per :meth:`step`, so its steps can alternate with another trainer's
    under the same machine load.

    Each step is a ``train()`` over a dataset of exactly ``prompts`` (the data loader restarts,
    so every rollout samples ``group_size`` completions of each prompt); weights carry over
    from step to step. ``step`` returns the wall time of its optimizer steps (generation,
    reward, loss and update, as TRL's own step timer sees them) and the rollout's completion
    tokens; ``timer.times`` and ``counts`` keep every optimizer step's time and every
    rollout's tokens. ``peft_config``: TRL's own LoRA (``GRPOTrainer(peft_config=...)``)."""

    def __init__(self, *, model_factory: Callable[[], tuple[Any, Any]], prompts: Sequence[str],
                 group_size: int, max_completion_length: int, passes: int = 1,
                 peft_config: Any = None) -> None:
        from datasets import Dataset
        from transformers import PrinterCallback
        from trl.trainer.grpo_config import GRPOConfig
        from trl.trainer.grpo_trainer import GRPOTrainer

        self.counts: list[int] = []
        counts = self.counts

        class CountingTrainer(GRPOTrainer):
            def _generate_and_score_completions(self, inputs: Any) -> Any:
                out = super()._generate_and_score_completions(inputs)
                counts.append(int(out["completion_mask"].sum()))
                return out

        def reward(completions: list[str], **kwargs: Any) -> list[float | None]:
            return [float(len(c) % 2) for c in completions]

        model, tokenizer = model_factory()
        self._tmp = tempfile.TemporaryDirectory()
        config = GRPOConfig(**_base_config(
            self._tmp.name, per_device_train_batch_size=len(prompts) * group_size,
            num_generations=group_size, max_completion_length=max_completion_length,
            num_iterations=passes, max_steps=passes,
            bf16=next(model.parameters()).dtype == torch.bfloat16,
        ))
        self.passes = passes
        self.timer = _step_timer()
        self.trainer = CountingTrainer(
            model=model, reward_funcs=reward, args=config,
            train_dataset=Dataset.from_dict({"prompt": list(prompts)}),
            processing_class=tokenizer, callbacks=[self.timer], peft_config=peft_config,
        )
        self.trainer.remove_callback(PrinterCallback)

    def step(self) -> tuple[float, int]:
        self.trainer.train()
        return sum(self.timer.times[-self.passes :]), self.counts[-1]

    def close(self) -> None:
        self._tmp.cleanup()

    def __enter__(self) -> TrlStepper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lensrl.bench.trl", description="LENS overhead and throughput inside TRL"
    )
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--full", action="store_true", help="larger model and more steps")
    ns = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from lensrl.policy import build_tiny

    overhead = measure_trl_lens_overhead(quick=not ns.full)
    spec = _QUICK if not ns.full else _FULL
    throughput = measure_trl_throughput(
        model_factory=lambda: build_tiny(str(spec["size"]), _ALPHABET, seed=0),
        prompts=list(_addition_dataset(int(spec["prompts"]))["prompt"]),
        group_size=int(spec["group_size"]),
        max_completion_length=int(spec["max_completion_length"]),
        passes=1,
        steps=3,
    )
    result = {"trl_lens_overhead": overhead, "trl_throughput": throughput}
    ns.out.parent.mkdir(parents=True, exist_ok=True)
    ns.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"trl_lens_step_overhead = {overhead['trl_lens_step_overhead']:.3f} "
        f"(goal <= {OVERHEAD_GOAL}); TRL {throughput['trl_tokens_per_s']:.0f} tokens/s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
