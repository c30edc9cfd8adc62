"""One LensGRPOTrainer run, on one process or under ``accelerate launch --num_processes 2 --cpu``.

Used by ``test_trl_two_process.py``. Generation is replaced (through TRL's ``rollout_func``) by
completions drawn from a generator seeded with the step and the *global* row index, so a
one-process and a two-process run see the same completions, and everything downstream of
generation — rewards, π_old log-probs, the gather, grouping, slicing, loss and the DDP update —
can be compared exactly. With ``--per-device 6`` on two processes and G = 4, the second group
of each step is split across the ranks.

    python trl_two_process_run.py --out DIR --per-device 12
    accelerate launch --num_processes 2 --cpu trl_two_process_run.py --out DIR --per-device 6
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from trl_testkit import (  # noqa: E402
    CHARS,
    config_kwargs,
    contains_one,
    tiny_dataset,
    tiny_model,
    tiny_tokenizer,
)

from lensrl.integrations.trl import LensGRPOConfig, LensGRPOTrainer  # noqa: E402

GLOBAL_BATCH = 12  # completions per step: 3 groups of G = 4
STEPS = 2


class Recorder(LensGRPOTrainer):
    """Keeps the gathered and the local advantages of every generation."""

    global_advantages: list[torch.Tensor]
    local_advantages: list[torch.Tensor]

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        out = super()._generate_and_score_completions(inputs)
        self.local_advantages.append(out["advantages"].detach().clone())
        self.global_advantages.append(torch.tensor(list(self._logs["advantages"])))
        return out


def make_rollout(tokenizer: Any) -> Any:
    char_ids = tokenizer.convert_tokens_to_ids(list(CHARS))

    def rollout(prompts: list[str], trainer: Any) -> dict[str, Any]:
        start = trainer.accelerator.process_index * len(prompts)
        prompt_ids, completion_ids = [], []
        for i, prompt in enumerate(prompts):
            g = torch.Generator().manual_seed(1000 * trainer.state.global_step + start + i)
            length = int(torch.randint(2, 7, (1,), generator=g))
            picks = torch.randint(len(char_ids), (length,), generator=g).tolist()
            ids = [char_ids[k] for k in picks]
            if length < 6:  # ended properly; length 6 is a truncated completion
                ids[-1] = tokenizer.eos_token_id
            prompt_ids.append(tokenizer(prompt)["input_ids"])
            completion_ids.append(ids)
        return {"prompt_ids": prompt_ids, "completion_ids": completion_ids, "logprobs": None}

    return rollout


def run(out_dir: Path, per_device: int) -> None:
    tokenizer = tiny_tokenizer()
    model = tiny_model(tokenizer, seed=0)
    initial = torch.cat([p.detach().flatten() for p in model.parameters()])
    args = LensGRPOConfig(
        **config_kwargs(
            output_dir=str(out_dir / "trainer"),
            per_device_train_batch_size=per_device,
            max_completion_length=6,
            max_steps=STEPS,
            optim="sgd",
            learning_rate=0.5,
        )
    )
    trainer = Recorder(
        model=model,
        reward_funcs=contains_one,
        args=args,
        train_dataset=tiny_dataset(24),
        processing_class=tokenizer,
        rollout_func=make_rollout(tokenizer),
    )
    trainer.global_advantages, trainer.local_advantages = [], []
    trainer.train()
    params = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
    rank = trainer.accelerator.process_index
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "world": trainer.accelerator.num_processes,
            "global": trainer.global_advantages,
            "local": trainer.local_advantages,
            "initial": initial,
            "params": params,
            "metrics": [h for h in trainer.state.log_history if "lens/D_mean" in h],
        },
        out_dir / f"rank{rank}.pt",
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--per-device", type=int, required=True)
    ns = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    run(ns.out, ns.per_device)
