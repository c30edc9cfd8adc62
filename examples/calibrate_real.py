"""Measure a real-model setting at step 0 on the training distribution (docs/training.md,
"Calibrating the real preset"): mean pass@1, the share of all-wrong and all-right groups, the
share of truncated completions and the rollout time, for ``--prompts`` training prompts x G.

    python examples/calibrate_real.py --preset smollm2 --prompts 32 \
        --set rollout.temperature=0.7 --samples runs/calib/t07.txt

Run it once per candidate setting; ``--samples`` writes every completion with its verdict so the
text can be read before the numbers are trusted. Nothing is trained.

``--heldout`` samples the held-out problems instead (the first ``--prompts`` of them), and
``--agreement`` (reasoning-gym tasks) also scores every completion with reasoning-gym's own
``score_answer`` and prints how often it agrees with lensrl's verdict (lensrl.data.gym).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from lensrl.rollout import generate
from lensrl.train.config import TrainConfig, apply_overrides
from lensrl.train.presets import load_preset
from lensrl.train.state import build_state


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="smollm2")
    p.add_argument("--prompts", type=int, default=32)
    p.add_argument("--chunk", type=int, default=8, help="prompts per generate call")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--samples", type=Path, help="write every completion and verdict here")
    p.add_argument("--heldout", action="store_true", help="the held-out problems, not training's")
    p.add_argument("--agreement", action="store_true",
                   help="reasoning-gym tasks: agreement of lensrl's verdicts with score_answer")
    args = p.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    data = apply_overrides(load_preset(args.preset), args.set)
    cfg = TrainConfig.from_dict(data, source=f"preset {args.preset}")
    state = build_state(cfg)
    G = cfg.rollout.samples_per_prompt
    problems = state.eval_problems[: args.prompts] if args.heldout else state.sampler.take(args.prompts)
    rows: list[tuple[object, str, bool, bool]] = []
    t = time.perf_counter()
    for i in range(0, len(problems), args.chunk):
        chunk = problems[i : i + args.chunk]
        ro = generate(state.model, state.tokenizer, [state.prompt(q) for q in chunk],
                      samples_per_prompt=G, max_new_tokens=cfg.rollout.max_new_tokens,
                      temperature=cfg.rollout.temperature, top_p=cfg.rollout.top_p,
                      generator=state.generator)
        verdicts = state.verifier.verify_batch([q.answer for q in chunk for _ in range(G)], ro.texts)
        for j, (text, v, trunc) in enumerate(zip(ro.texts, verdicts, ro.truncated.tolist())):
            rows.append((chunk[j // G], text, bool(v.correct), bool(trunc)))
    rollout_s = time.perf_counter() - t
    correct = torch.tensor([r[2] for r in rows], dtype=torch.float).reshape(-1, G)
    per_group = correct.mean(1)
    result = {
        "preset": args.preset, "set": args.set, "prompts": len(problems), "G": G,
        "pass1": round(float(per_group.mean()), 3),
        "all_wrong": round(float((per_group == 0).float().mean()), 3),
        "all_right": round(float((per_group == 1).float().mean()), 3),
        "truncated": round(sum(r[3] for r in rows) / len(rows), 3),
        "rollout_s_per_8_prompts": round(rollout_s / len(problems) * 8, 1),
    }
    if args.agreement:
        from dataclasses import asdict

        from lensrl.data.gym import agreement, gym_entries

        split, count = ("test", cfg.task.eval_problems) if args.heldout else ("train", cfg.task.train_problems)
        entries = {p.id: (p, e) for p, e in gym_entries(asdict(cfg.task), split, count)}
        pairs = [entries[q.id] for q in problems]
        texts = [[r[1] for r in rows[i * G : (i + 1) * G]] for i in range(len(problems))]
        strict = cfg.verify.strict_eval if args.heldout else cfg.verify.strict_train
        agree = agreement(pairs, texts, strict=strict)
        result["agreement_strict"] = strict
        result["agreement"] = {k: agree[k] for k in ("pairs", "agree", "rate", "lensrl_correct",
                                                     "gym_correct")}
        for gold, text, ours, theirs in agree["disagreements"]:
            print(f"disagree: gold={gold} lensrl={ours} reasoning-gym={theirs}: {text!r}")
    if args.samples:
        args.samples.parent.mkdir(parents=True, exist_ok=True)
        with args.samples.open("w") as f:
            f.write(json.dumps(result) + "\n" + state.prompt(problems[0]) + "\n")
            for q, text, ok, trunc in rows:
                f.write(f"--- {q.id} gold={q.answer} correct={ok} truncated={trunc}\n{text}\n")
    print(json.dumps(result))
    state.verifier.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
