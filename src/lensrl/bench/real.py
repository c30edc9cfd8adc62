"""``lensrl bench --only real``: lensrl's trainer against TRL's ``GRPOTrainer`` on a real
pretrained model (SmolLM2-135M-Instruct), with full fine-tuning and with LoRA.

Both sides do the same work each step: the same ``prompts`` (fixed, chat template applied by
lensrl, handed to TRL as the same strings), ``group_size`` samples of each at temperature 1 and
top-p 1, at most ``max_new_tokens`` new tokens, fp32, and one optimizer update on the whole
rollout; under LoRA both train the same peft adapters (:data:`LORA`). Each variant (``full``,
``lora``) runs in its own process, with its lensrl and its TRL trainer alternating in A B B A
rounds (TRL, lensrl, lensrl, TRL) so that both see the same machine load.

Throughput is tokens per second, counted the same way on both sides: the completion tokens
generated plus the completion tokens the loss trains on, over the wall time of the whole step.
lensrl's step is its trainer's own ``train_step`` (collect → score → update, verification included;
TRL's reward is a trivial function, so this favours TRL slightly); TRL's step is ``train()``
over one rollout, timed by its own step callback. lensrl skips the rows whose advantage is 0
(``algo.skip_zero_advantage``), so only the rows it trains count as trained tokens.
The headline per variant is the median over rounds of lensrl's rate ÷ TRL's rate in that round.

Memory: each variant's process records lensrl's resident memory after loading the model, its
peak during a step (sampled, :class:`lensrl.bench.common.PeakRSS`), the process's peak so far
(``ru_maxrss``: loading included) before TRL is built, and at the end with both trainers alive.
:func:`lensrl_memory` measures lensrl's side alone (``python -m lensrl.bench.real --variant
lora --memory-only``).

Run it alone (about 20 minutes on 2 cores): ``lensrl bench --only real`` → bench/real.json.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from lensrl.bench.common import GOALS, PeakRSS, abba, machine, median_row, rss_bytes

# The same adapters on both sides: r 16, alpha 32 on every projection of the Llama layers.
LORA: dict[str, Any] = {
    "r": 16, "alpha": 32, "dropout": 0.0,
    "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                       "down_proj"],
}

# 2 prompts × 8 samples × 64 tokens, fp32, 2 rounds of A B B A per variant, one torch thread on
# each side (on a shared machine two spinning OpenMP threads lose more than they gain, and the
# ratio is what counts): ~20 minutes on 2 quiet cores.
REAL: dict[str, Any] = dict(
    model="smollm2", prompts=2, group_size=8, max_new_tokens=64, rounds=2, threads=1,
    rows_per_micro_batch=8, levels=[1, 2, 3, 4, 5], template=None, dtype="float32",
    lora=LORA, variants=("lora", "full"),
)

GOAL = GOALS["real_vs_trl_throughput"][1]  # lensrl ÷ TRL tokens/s


def real_config(run_dir: str, spec: dict[str, Any], lora: bool) -> Any:
    """lensrl's config for the spec: one rollout of ``prompts`` × G and one update on it."""
    from lensrl.train.config import TrainConfig

    P, G = spec["prompts"], spec["group_size"]
    return TrainConfig.from_dict({
        "model": {"name": spec["model"], "dtype": spec["dtype"], "device": "cpu",
                  "lora": dict(spec["lora"]) if lora else None},
        "task": {"levels": list(spec["levels"]), "train_problems": 200, "eval_problems": 0,
                 "template": spec["template"]},
        "rollout": {"samples_per_prompt": G, "max_new_tokens": spec["max_new_tokens"],
                    "temperature": 1.0, "top_p": 1.0},
        "batch": {"prompts_per_step": P, "prompts_per_update": P,
                  "rows_per_micro_batch": spec["rows_per_micro_batch"],
                  "rows_per_logprob_pass": P * G},
        "algo": {"estimator": "lens"},
        "optim": {"lr": 1e-6},
        "run": {"run_dir": run_dir, "steps": 1, "progress": False, "log_samples": 0},
    })


def lensrl_setup(cfg: Any) -> Any:
    """``build_state(cfg)`` drawing the same ``prompts_per_step`` problems every step."""
    import dataclasses

    from lensrl.data import ProblemSampler
    from lensrl.train.state import build_state

    s = build_state(cfg)
    fixed = ProblemSampler(s.sampler.take(cfg.batch.prompts_per_step), cfg.run.seed)
    return dataclasses.replace(s, sampler=fixed)


def lensrl_step(s: Any, cfg: Any) -> dict[str, float]:
    """One step of lensrl's trainer (:func:`lensrl.train.trainer.train_step`), timed."""
    from lensrl.train.trainer import train_step

    t0 = time.perf_counter()
    batch, metrics, _ = train_step(s, cfg)
    step_s = time.perf_counter() - t0
    mask = batch.rollout.completion_mask
    trained_rows = batch.advantages != 0 if cfg.algo.skip_zero_advantage else mask[:, 0] >= 0
    generated = float(mask.sum())
    trained = float(mask[trained_rows].sum())
    return {"step_s": step_s, "rollout_s": metrics["time/rollout_s"],
            "verify_s": metrics["time/verify_s"],  # train_s: scoring and the update
            "train_s": step_s - metrics["time/rollout_s"] - metrics["time/verify_s"],
            "generated_tokens": generated, "trained_tokens": trained,
            "tokens": generated + trained, "tokens_per_s": (generated + trained) / step_s,
            "rows_trained_frac": metrics["opt/rows_trained_frac"],
            "reward_mean": float(batch.correct.nan_to_num(0).mean()),
            "completion_len_mean": float(mask.sum(-1).float().mean()),
            "frac_truncated": float(batch.rollout.truncated.float().mean())}


def peft_config(lora: dict[str, Any]) -> Any:
    """TRL's side of :data:`LORA`: the peft config lensrl.policy.add_lora builds."""
    from peft import LoraConfig

    return LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], target_modules=lora["target_modules"],
                      lora_dropout=lora["dropout"], bias="none", task_type="CAUSAL_LM")


def peak_rss_mib() -> float:
    """This process's peak resident memory so far (``ru_maxrss``, KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_variant(spec: dict[str, Any], variant: str, tmp: Path) -> dict[str, Any]:
    """One variant (``full`` or ``lora``): lensrl and TRL interleaved, TRL lensrl lensrl TRL per
    round, after one warm-up step each, with ``spec["threads"]`` torch threads."""
    saved_threads = torch.get_num_threads()
    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    try:
        return _run_variant(spec, variant, tmp)
    finally:
        torch.set_num_threads(saved_threads)


def _rounds(s: Any, cfg: Any, trl: Any, rounds: int,
            ) -> tuple[list[dict[str, float]], list[dict[str, float]], list[float]]:
    """``rounds`` rounds of TRL, lensrl, lensrl, TRL: lensrl's step rows, TRL's, and each
    round's lensrl ÷ TRL token rate."""
    lens_rows: list[dict[str, float]] = []
    trl_rows: list[dict[str, float]] = []
    ratios: list[float] = []
    for _ in range(rounds):
        got: dict[str, list[dict[str, float]]] = {"trl": [], "lensrl": []}
        for name in abba(("trl", "lensrl"), 0) + abba(("trl", "lensrl"), 1):
            if name == "trl":
                seconds, count = trl.step()
                got["trl"].append({"step_s": seconds, "generated_tokens": float(count),
                                   "trained_tokens": float(count), "tokens": 2.0 * count,
                                   "tokens_per_s": 2.0 * count / seconds})
            else:
                got["lensrl"].append(lensrl_step(s, cfg))
        lens_rows += got["lensrl"]
        trl_rows += got["trl"]
        ratios.append(_rate(got["lensrl"]) / _rate(got["trl"]))
    return lens_rows, trl_rows, ratios


def _run_variant(spec: dict[str, Any], variant: str, tmp: Path) -> dict[str, Any]:
    from lensrl.bench.trl import TrlStepper
    from lensrl.policy import parameter_count
    from lensrl.train.state import load_model

    lora = variant == "lora"
    cfg = real_config(str(tmp / variant), spec, lora)
    t = time.perf_counter()
    s = lensrl_setup(cfg)
    load_s = time.perf_counter() - t
    rss_loaded = rss_bytes() / 2**20
    prompts = [s.prompt(p) for p in s.sampler.problems]
    try:
        with PeakRSS() as step_mem:  # the step alone, above the loaded model
            warm = lensrl_step(s, cfg)  # warm-up, not counted
        lensrl_peak = peak_rss_mib()  # lensrl alone: model load and a step
        trainable = _trainable(s.model)
        with TrlStepper(model_factory=lambda: load_model(cfg.model, cfg.run.seed),
                        prompts=prompts, group_size=cfg.rollout.samples_per_prompt,
                        max_completion_length=cfg.rollout.max_new_tokens,
                        peft_config=peft_config(spec["lora"]) if lora else None) as trl:
            trl_trainable = _trainable(trl.trainer.model)
            trl.step()  # warm-up, not counted
            lens_rows, trl_rows, ratios = _rounds(s, cfg, trl, spec["rounds"])
    finally:
        s.verifier.close()
    lens_med, trl_med = median_row(lens_rows), median_row(trl_rows)
    ratio = statistics.median(ratios)
    return {
        "lensrl_vs_trl_throughput": ratio,
        "goal": f">= {GOAL}",
        "meets_goal": ratio >= GOAL,
        "per_round_ratios": ratios,
        "ratio_of_median_rates": lens_med["tokens_per_s"] / trl_med["tokens_per_s"],
        "lensrl_tokens_per_s": lens_med["tokens_per_s"],
        "trl_tokens_per_s": trl_med["tokens_per_s"],
        "lensrl_step_s_median": lens_med["step_s"],
        "trl_step_s_median": trl_med["step_s"],
        "lensrl_median": lens_med,
        "lensrl_steps": lens_rows,
        "trl_steps": trl_rows,
        "lensrl_warmup_step": warm,
        "memory_mib": {
            "lensrl_rss_after_load": rss_loaded,
            "lensrl_peak_rss": lensrl_peak,  # load + a step, before TRL exists
            "lensrl_step_peak_rss": step_mem.total_mib,  # sampled during the warm-up step
            "lensrl_step_above_load": step_mem.mib,
            "peak_rss_both": peak_rss_mib(),
        },
        "params": parameter_count(s.model),
        "trainable_params": {"lensrl": trainable, "trl": trl_trainable},
        "lensrl_load_s": load_s,
        "prompt_examples": prompts[:2],
        "threads": torch.get_num_threads(),
    }


def _trainable(model: Any) -> int:
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def lensrl_memory(spec: dict[str, Any], variant: str, steps: int = 2) -> dict[str, Any]:
    """lensrl alone on ``spec``'s work (``variant`` ``full`` or ``lora``): step times and
    resident memory after loading, during the steps (sampled) and at the process's peak."""
    spec = {**REAL, **spec}
    saved_threads = torch.get_num_threads()
    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = real_config(str(Path(tmp) / variant), spec, variant == "lora")
            s = lensrl_setup(cfg)
            loaded = rss_bytes() / 2**20
            load_peak = peak_rss_mib()
            try:
                with PeakRSS() as mem:
                    rows = [lensrl_step(s, cfg) for _ in range(steps)]
            finally:
                s.verifier.close()
    finally:
        torch.set_num_threads(saved_threads)
    return {"variant": variant, "steps": rows, "step_s": [r["step_s"] for r in rows],
            "rss_after_load_mib": loaded, "peak_rss_load_mib": load_peak,
            "peak_rss_steps_mib": mem.total_mib, "steps_above_load_mib": mem.mib,
            "trainable_params": _trainable(s.model),
            "threads": int(spec["threads"]) if spec.get("threads") else saved_threads,
            "machine": machine()}


def _rate(rows: list[dict[str, float]]) -> float:
    """Tokens per second over a round's steps of one side."""
    return sum(x["tokens"] for x in rows) / sum(x["step_s"] for x in rows)


def _in_child(spec: dict[str, Any], variant: str) -> dict[str, Any]:
    """:func:`run_variant` in a fresh Python process (its own memory peak; nothing left over
    from the other variant)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "variant.json"
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        cmd = [sys.executable, "-m", "lensrl.bench.real", "--variant", variant,
               "--spec", json.dumps(spec), "--out", str(out)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise RuntimeError(f"variant {variant} failed: {' | '.join(tail)}")
        result: dict[str, Any] = json.loads(out.read_text())
        return result


def measure_real(spec: dict[str, Any] | None = None, *, isolate: bool = True,
                 partial: Path | None = None) -> dict[str, Any]:
    """Every variant of ``spec`` (default :data:`REAL`), each in its own process unless
    ``isolate`` is False (the tests' tiny models); the headline of each is
    ``lensrl_vs_trl_throughput``. ``partial``: a JSON file rewritten after each variant, so
    a long run that is cut short keeps what it measured."""
    spec = {**REAL, **(spec or {})}
    spec["variants"] = list(spec["variants"])
    out: dict[str, Any] = {"spec": spec, "machine": machine(), "goal": f">= {GOAL}"}
    t0 = time.perf_counter()
    for variant in spec["variants"]:
        t = time.perf_counter()
        if isolate:
            out[variant] = _in_child(spec, variant)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                out[variant] = run_variant(spec, variant, Path(tmp))
        out[variant]["elapsed_s"] = time.perf_counter() - t
        if partial is not None:
            partial.parent.mkdir(parents=True, exist_ok=True)
            partial.write_text(json.dumps(out, indent=2) + "\n")
    out["elapsed_s"] = time.perf_counter() - t0
    out["machine"]["load_avg_1m_end"] = machine()["load_avg_1m"]
    if "full" in out and "lora" in out:  # what LoRA saves lensrl (not interleaved: two processes)
        full, lora = out["full"], out["lora"]
        out["lora_vs_full_lensrl"] = {
            "step_s": {"full": full["lensrl_step_s_median"], "lora": lora["lensrl_step_s_median"],
                       "speedup": full["lensrl_step_s_median"] / lora["lensrl_step_s_median"]},
            "train_s": {"full": full["lensrl_median"]["train_s"],
                        "lora": lora["lensrl_median"]["train_s"]},
            "rollout_s": {"full": full["lensrl_median"]["rollout_s"],
                          "lora": lora["lensrl_median"]["rollout_s"]},
            "peak_rss_mib": {"full": full["memory_mib"]["lensrl_peak_rss"],
                             "lora": lora["memory_mib"]["lensrl_peak_rss"]},
        }
    return out


def main(argv: list[str] | None = None) -> int:
    """One variant, for :func:`_in_child`."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m lensrl.bench.real")
    p.add_argument("--variant", choices=("full", "lora"), required=True)
    p.add_argument("--spec", help="the spec, as JSON (default: REAL)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--memory-only", action="store_true", help="lensrl alone: lensrl_memory")
    ns = p.parse_args(argv)
    spec = json.loads(ns.spec) if ns.spec else dict(REAL)
    torch.manual_seed(0)
    if ns.memory_only:
        result = lensrl_memory(spec, ns.variant)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            result = run_variant(spec, ns.variant, Path(tmp))
    ns.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
