"""Benchmarks of lensrl's own trainer: the LENS step overhead, throughput against TRL on the
same work, scaling with G and length, the exact speed-ups, and bf16 against fp32."""

from __future__ import annotations

import dataclasses
import logging
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from lensrl.bench.common import PeakRSS, abba, is_linear, median_row

log = logging.getLogger("lensrl.bench")

# quick: about 3 minutes on 2 quiet cores (several times that under load); full: the 10M
# model and the paper's G = 16.
# template: the built-in task's own short prompt (lensrl.data.BUILTIN_TEMPLATE, what the demo
# trains on), used by lensrl and TRL alike; "plain" would be the ~123-token PLAIN_TEMPLATE.
QUICK: dict[str, Any] = dict(
    model="small", template="builtin", prompts=4, group_size=8, max_new_tokens=32, steps=10,
    scaling_prompts=2, scaling_g=(8, 16, 32), scaling_t=(16, 32, 64), scaling_steps=3,
    advantage_n=(512, 8192, 65536), advantage_reps=7,
)
FULL: dict[str, Any] = dict(
    model="medium", template="builtin", prompts=8, group_size=16, max_new_tokens=64, steps=5,
    scaling_prompts=4, scaling_g=(8, 16, 32), scaling_t=(32, 64, 128), scaling_steps=3,
    advantage_n=(512, 8192, 65536), advantage_reps=25,
)


def advantage_ms(sizes: tuple[int, ...], *, group_size: int = 16, reps: int = 7) -> dict[str, Any]:
    """Median ms of ``compute_advantages`` per estimator and N, estimators interleaved."""
    from lensrl.core import compute_advantages

    gen = torch.Generator().manual_seed(0)
    out: dict[str, dict[str, float]] = {"grpo": {}, "lens": {}}
    for n in sizes:
        correct = (torch.rand(n, generator=gen) < 0.3).float()
        mean_lp = -torch.rand(n, generator=gen) * 2
        times: dict[str, list[float]] = {"grpo": [], "lens": []}
        for r in range(reps + 1):
            for est in abba(("grpo", "lens"), r):
                t = time.perf_counter()
                compute_advantages(correct, mean_lp, group_size=group_size, estimator=est)
                if r:  # the first round warms up
                    times[est].append(time.perf_counter() - t)
        for est, ts in times.items():
            out[est][str(n)] = 1000 * statistics.median(ts)
    return {**out, "group_size": group_size, "reps": reps}


def build_model(name: str, seed: int = 0) -> tuple[Any, Any]:
    """A tiny Llama for the built-in task: a preset of lensrl.policy (``medium`` is ~10M)."""
    from lensrl.data import ALPHABET
    from lensrl.policy import build_tiny

    return build_tiny(name, ALPHABET, seed=seed)


TEMPLATES = {"builtin": "BUILTIN_TEMPLATE", "plain": "PLAIN_TEMPLATE"}


def template_text(name: str) -> str:
    """The prompt template a spec names: ``builtin`` or ``plain`` (lensrl.data)."""
    import lensrl.data

    return str(getattr(lensrl.data, TEMPLATES[name]))


# Both sides compute in float32 unless a section says otherwise (``precision`` times bf16):
# recorded in the JSON's spec, so that numbers from a bf16 machine are not read as fp32 ones.
DTYPE = "float32"


def train_config(run_dir: str, *, estimator: str, prompts: int, group_size: int,
                 max_new_tokens: int, template: str = "builtin",
                 skip_zero_advantage: bool = True, dtype: str = DTYPE) -> Any:
    """One rollout of ``prompts`` × G and one optimizer update on all of it (TRL's shape)."""
    from lensrl.train.config import TrainConfig

    n = prompts * group_size
    return TrainConfig.from_dict({
        "model": {"name": "nano", "dtype": dtype, "device": "cpu"},
        "task": {"train_problems": 200, "eval_problems": 0, "template": template_text(template)},
        "rollout": {"samples_per_prompt": group_size, "max_new_tokens": max_new_tokens},
        "batch": {"prompts_per_step": prompts, "prompts_per_update": prompts,
                  "rows_per_micro_batch": n, "rows_per_logprob_pass": n},
        "algo": {"estimator": estimator, "skip_zero_advantage": skip_zero_advantage},
        "optim": {"lr": 1e-6},
        "run": {"run_dir": run_dir, "steps": 1, "progress": False, "log_samples": 0},
    })


def trainer_setup(cfg: Any, model_name: str, *, fixed_prompts: bool = False) -> Any:
    """``build_state(cfg)`` with the bench's model (same seed, hence same weights, each time).

    ``fixed_prompts``: every step uses the same ``batch.prompts_per_step`` problems, as the TRL
    comparison does."""
    from lensrl.data import ProblemSampler
    from lensrl.train.state import build_state, make_optimizer

    s = build_state(cfg)
    model, tokenizer = build_model(model_name, seed=cfg.run.seed)
    model.to(device=s.device, dtype=next(s.model.parameters()).dtype)
    optimizer = make_optimizer(model, cfg.optim)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda u: 1.0)
    sampler = s.sampler
    if fixed_prompts:
        sampler = ProblemSampler(s.sampler.take(cfg.batch.prompts_per_step), cfg.run.seed)
    return dataclasses.replace(s, model=model, tokenizer=tokenizer, optimizer=optimizer,
                               scheduler=scheduler, sampler=sampler)


def trainer_step(s: Any, cfg: Any) -> dict[str, float]:
    """One step of lensrl's trainer (:func:`lensrl.train.trainer.train_step`: phases 1–6 of
    ``train``, the code a run executes) with its own phase times, as a bench row.

    ``compute_s`` is the step without verification (TRL's side uses a trivial reward);
    token counts feed the throughput and FLOP-floor numbers."""
    from lensrl.train.trainer import train_step

    t0 = time.perf_counter()
    batch, metrics, _ = train_step(s, cfg)
    step_s = time.perf_counter() - t0
    ro = batch.rollout
    G = cfg.rollout.samples_per_prompt
    return {
        "step_s": step_s,
        "compute_s": step_s - metrics["time/verify_s"],
        **{phase + "_s": metrics[f"time/{phase}_s"]
           for phase in ("rollout", "verify", "score", "update")},
        "completion_tokens": float(ro.completion_mask.sum()),
        # prompt tokens are prefilled once per prompt, completions once per row
        "generated_tokens": float(ro.prompt_mask[::G].sum() + ro.completion_mask.sum()),
        "trained_tokens": float(ro.attention_mask.sum()),
        "completion_len_mean": float(ro.completion_mask.sum(-1).float().mean()),
        "prompt_len_mean": float(ro.prompt_mask.sum(-1).float().mean()),
        "rows_trained_frac": metrics["opt/rows_trained_frac"],
    }


def interleaved(setups: dict[str, tuple[Any, Any]], steps: int) -> dict[str, list[dict[str, float]]]:
    """``steps`` timed steps per setup after one warm-up step, in A B B A order."""
    names = list(setups)
    out: dict[str, list[dict[str, float]]] = {k: [] for k in names}
    for r in range(steps + 1):
        for name in abba(names, r):
            s, cfg = setups[name]
            row = trainer_step(s, cfg)
            if r:
                out[name].append(row)
    return out


def lens_step_overhead(spec: dict[str, Any], tmp: Path) -> dict[str, Any]:
    """LENS ÷ GRPO median step time of lensrl's trainer: same model, config, seed and data.

    The headline trains every row in both (``skip_zero_advantage=False``): equal work, so the
    ratio is the cost of LENS's confidence computation. ``lens_step_overhead_skip`` is the same
    with the trainer's default skipping: GRPO then skips its all-right and all-wrong groups,
    while LENS trains on the all-wrong ones, so LENS does more work and costs more."""
    setups = {}
    for skip in (False, True):
        for est in ("grpo", "lens"):
            name = est + ("_skip" if skip else "")
            cfg = train_config(str(tmp / f"overhead_{name}"), estimator=est,
                               prompts=spec["prompts"], group_size=spec["group_size"],
                               max_new_tokens=spec["max_new_tokens"], template=spec["template"],
                               skip_zero_advantage=skip)
            setups[name] = (trainer_setup(cfg, spec["model"]), cfg)
    try:
        with PeakRSS() as mem:
            rows = interleaved(setups, spec["steps"])
    finally:
        for s, _ in setups.values():
            s.verifier.close()
    med = {k: median_row(v) for k, v in rows.items()}
    # Each round runs the two back to back, so a per-round ratio cancels slow drifts of the
    # machine's load; its median is the headline. Both do the same sampling and update work
    # (same seed; GRPO's zero advantages still go through the loss), so the LENS-specific cost
    # is the scoring difference, reported beside it as a share of the step.
    paired = [a["step_s"] / b["step_s"] for a, b in zip(rows["lens"], rows["grpo"])]
    paired_skip = [a["step_s"] / b["step_s"]
                   for a, b in zip(rows["lens_skip"], rows["grpo_skip"])]
    return {
        "lens_step_overhead": statistics.median(paired),
        "per_round_ratios": paired,
        "lens_step_overhead_skip": statistics.median(paired_skip),
        "per_round_ratios_skip": paired_skip,
        "skip_speedup": {est: med[est]["step_s"] / med[est + "_skip"]["step_s"]
                         for est in ("grpo", "lens")},
        "ratio_of_medians": med["lens"]["step_s"] / med["grpo"]["step_s"],
        "lens_compute_overhead": med["lens"]["compute_s"] / med["grpo"]["compute_s"],
        "lens_scoring_share": (med["lens"]["score_s"] - med["grpo"]["score_s"])
        / med["grpo"]["step_s"],
        "lens_score_ms": 1000 * med["lens"]["score_s"],
        "grpo_score_ms": 1000 * med["grpo"]["score_s"],
        "median": med,
        "steps": spec["steps"],
        "peak_rss_mib": mem.mib,
        "peak_rss_total_mib": mem.total_mib,
    }


def trainer_vs_trl(spec: dict[str, Any], tmp: Path, rate_gflops: float) -> dict[str, Any]:
    """lensrl's and TRL's trained completion tokens per second on the same work, plus
    lensrl's FLOP-floor ratio. The two alternate step by step, TRL, lensrl, lensrl, TRL in each
    round (``lensrl.bench.trl.TrlStepper`` runs TRL one step at a time), so both see the same
    machine load; the headline is the median over rounds of the round's ratio (each side's
    tokens ÷ its time in that round), as for ``lens_step_overhead``."""
    from lensrl.policy import parameter_count

    P, G, T = spec["prompts"], spec["group_size"], spec["max_new_tokens"]
    cfg = train_config(str(tmp / "throughput"), estimator="lens", prompts=P, group_size=G,
                       max_new_tokens=T, template=spec["template"])
    s = trainer_setup(cfg, spec["model"], fixed_prompts=True)
    prompts = [s.prompt(p) for p in s.sampler.problems]
    params = parameter_count(s.model)
    try:
        rows, trl_steps, ratios, mem = _alternate_with_trl(s, cfg, spec, prompts)
    finally:
        s.verifier.close()
    med = median_row(rows)
    lens_rates = [r["completion_tokens"] / r["compute_s"] for r in rows]
    trl_rates = [tokens / seconds for seconds, tokens in trl_steps]
    pooled_lens = sum(r["completion_tokens"] for r in rows) / sum(r["compute_s"] for r in rows)
    pooled_trl = sum(t for _, t in trl_steps) / sum(sec for sec, _ in trl_steps)
    floor = flop_floor(params, med, rate_gflops)
    return {
        "trainer_vs_trl_throughput": statistics.median(ratios),
        "per_round_ratios": ratios,
        "ratio_of_median_rates": statistics.median(lens_rates) / statistics.median(trl_rates),
        "flop_floor_ratio": med["compute_s"] / (floor["rollout_s"] + floor["update_s"]),
        "flop_floor_ratio_prompt_once": med["compute_s"] / (floor["rollout_s"]
                                                            + floor["update_prompt_once_s"]),
        "lensrl_tokens_per_s": statistics.median(lens_rates),
        "trl_tokens_per_s": statistics.median(trl_rates),
        "pooled_ratio": pooled_lens / pooled_trl,
        "lensrl_tokens_per_s_steps": lens_rates,
        "trl_tokens_per_s_steps": trl_rates,
        "trl_step_s_median": statistics.median(sec for sec, _ in trl_steps),
        "lensrl_median": med,
        # both trainers are alive during the measurement
        "peak_rss_both_mib": mem.mib,
        "peak_rss_both_total_mib": mem.total_mib,
        "floor": floor,
        "setup": {"model": spec["model"], "params": params, "prompts": P, "group_size": G,
                  "max_new_tokens": T, "passes": 1, "steps": spec["steps"], "dtype": DTYPE,
                  "template": spec["template"], "template_text": template_text(spec["template"]),
                  "prompt_examples": prompts[:2],
                  "skip_zero_advantage": cfg.algo.skip_zero_advantage,
                  "trained_tokens": "completion tokens, once per pass (both sides)",
                  "rate": "per round (TRL, lensrl, lensrl, TRL): each side's tokens ÷ its time; "
                          "median of the rounds' ratios"},
    }


def _alternate_with_trl(s: Any, cfg: Any, spec: dict[str, Any], prompts: list[str],
                        ) -> tuple[list[dict[str, float]], list[tuple[float, int]], list[float],
                                   PeakRSS]:
    """The rounds of :func:`trainer_vs_trl` after one warm-up step each: lensrl's step rows,
    TRL's ``(seconds, tokens)`` steps, each round's lensrl ÷ TRL token rate, the memory peak."""
    from lensrl.bench.trl import TrlStepper

    rows: list[dict[str, float]] = []
    trl_steps: list[tuple[float, int]] = []
    ratios: list[float] = []
    with TrlStepper(model_factory=lambda: build_model(spec["model"], seed=cfg.run.seed),
                    prompts=prompts, group_size=cfg.rollout.samples_per_prompt,
                    max_completion_length=cfg.rollout.max_new_tokens) as trl, PeakRSS() as mem:
        trl.step()  # warm-up, not counted
        trainer_step(s, cfg)
        for _ in range(spec["steps"]):
            a = trl.step()
            lens = [trainer_step(s, cfg), trainer_step(s, cfg)]
            b = trl.step()
            trl_steps += [a, b]
            rows += lens
            lens_rate = (sum(r["completion_tokens"] for r in lens)
                         / sum(r["compute_s"] for r in lens))
            ratios.append(lens_rate / ((a[1] + b[1]) / (a[0] + b[0])))
    return rows, trl_steps, ratios, mem


def flop_floor(params: int, med: dict[str, float], rate_gflops: float) -> dict[str, float]:
    """The seconds a step of ``med`` (a median bench row) needs at ``rate_gflops`` of matmul,
    2·params per generated token and 6·params per trained one, and the step's ratios to it."""
    gen_floor = 2 * params * med["generated_tokens"] / (rate_gflops * 1e9)
    upd_floor = 6 * params * med["trained_tokens"] / (rate_gflops * 1e9)
    # The update shares each prompt across its G rows, so it need not do 6·params for every
    # row's prompt tokens: the floor of that work counts each prompt once (= generated tokens).
    upd_floor_unique = 6 * params * med["generated_tokens"] / (rate_gflops * 1e9)
    return {"params": params, "matmul_gflops": rate_gflops,
            "rollout_s": gen_floor, "update_s": upd_floor,
            "update_prompt_once_s": upd_floor_unique,
            "rollout_ratio": med["rollout_s"] / gen_floor,
            "update_ratio": med["update_s"] / upd_floor,
            "update_ratio_prompt_once": med["update_s"] / upd_floor_unique}


def scaling(spec: dict[str, Any], tmp: Path) -> dict[str, Any]:
    """Step time and peak RSS against G (at the middle T) and T (at G = 16)."""
    P = spec["scaling_prompts"]
    t_mid = spec["scaling_t"][1]
    configs = [(g, t_mid) for g in spec["scaling_g"]]
    configs += [(16, t) for t in spec["scaling_t"] if (16, t) not in configs]
    rows = []
    for G, T in configs:
        cfg = train_config(str(tmp / f"scale_{G}_{T}"), estimator="lens", prompts=P,
                           group_size=G, max_new_tokens=T, template=spec["template"])
        s = trainer_setup(cfg, spec["model"])
        try:
            with PeakRSS() as mem:
                med = median_row(interleaved({"x": (s, cfg)}, spec["scaling_steps"])["x"])
        finally:
            s.verifier.close()
        rows.append({"group_size": G, "max_new_tokens": T, "rows": P * G,
                     "peak_rss_mib": mem.mib, "peak_rss_total_mib": mem.total_mib, **med})
        log.info("  G=%d T=%d: %.2f s/step, %.0f MiB", G, T, med["step_s"], mem.mib)
    by_g = [r for r in rows if r["max_new_tokens"] == t_mid]
    by_t = [r for r in rows if r["group_size"] == 16]
    return {
        "configs": rows,
        "prompts": P,
        "vs_group_size": is_linear([r["rows"] for r in by_g], [r["compute_s"] for r in by_g]),
        "vs_completion_length": is_linear([r["completion_len_mean"] for r in by_t],
                                          [r["compute_s"] for r in by_t]),
    }


def speedups(spec: dict[str, Any], tmp: Path) -> dict[str, Any]:
    """What each of the trainer's exact savings buys, on the throughput configuration.

    The update (``update`` on the same rollouts, LENS, every row trained) with: the whole
    update as one padded micro-batch (``padded``, how it ran before); micro-batches of rows
    sorted by length with padding columns trimmed (``sorted_trimmed``); plus the shared prompt
    prefix (``shared_prefix``, the default). The rollout with the model's ``forward`` per decode
    step (``hf_forward``) against the Llama step (``llama_step``, the default), same draws.
    Variants alternate within each round; medians and ratios to the first variant."""
    from lensrl import decode, rollout
    from lensrl.train.trainer import collect, score, update

    P, G, T = spec["prompts"], spec["group_size"], spec["max_new_tokens"]
    cfg = train_config(str(tmp / "speedups"), estimator="lens", prompts=P, group_size=G,
                       max_new_tokens=T, template=spec["template"])
    s = trainer_setup(cfg, spec["model"], fixed_prompts=True)
    try:
        batches = [score(s, cfg, collect(s, cfg)[0]) for _ in range(4)]
    finally:
        s.verifier.close()
    prompts = [s.prompt(p) for p in s.sampler.problems]
    no_share = dataclasses.replace(cfg, algo=dataclasses.replace(cfg.algo,
                                                                 share_prompt_prefix=False))
    update_variants = {"padded": (no_share, 10**9), "sorted_trimmed": (no_share, None),
                       "shared_prefix": (cfg, None)}
    decoders = {"hf_forward": decode.HFDecoder, "llama_step": decode.make_decoder}
    times: dict[str, list[float]] = {k: [] for k in [*update_variants, *decoders]}
    for r in range(spec["steps"]):
        for name in abba(list(update_variants), r):
            c, cost = update_variants[name]
            batch = batches[r % len(batches)]
            t = time.perf_counter()
            update(s, c, batch, 0, call_cost=cost)
            times[name].append(time.perf_counter() - t)
        for name in abba(list(decoders), r):
            generator = torch.Generator().manual_seed(r)
            t = time.perf_counter()
            rollout.generate(s.model, s.tokenizer, prompts, samples_per_prompt=G,
                             max_new_tokens=T, generator=generator, decoder=decoders[name])
            times[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "update_s": {k: med[k] for k in update_variants},
        "update_speedup": {k: med["padded"] / med[k] for k in update_variants},
        "rollout_s": {k: med[k] for k in decoders},
        "rollout_speedup": med["hf_forward"] / med["llama_step"],
        "rounds": spec["steps"],
    }


def precision(spec: dict[str, Any], tmp: Path) -> dict[str, Any]:
    """bf16 (autocast over fp32 weights) ÷ fp32 step time of lensrl's trainer, interleaved in
    one run on the same work; with the compute dtype each ran in and whether this CPU has
    native bf16 (without it bf16 is emulated, and the ratio says how much that costs)."""
    from lensrl.train.precision import cpu_has_fast_bf16

    setups = {}
    for dtype in ("float32", "bfloat16"):
        cfg = train_config(str(tmp / f"precision_{dtype}"), estimator="lens",
                           prompts=spec["prompts"], group_size=spec["group_size"],
                           max_new_tokens=spec["max_new_tokens"], template=spec["template"],
                           dtype=dtype)
        setups[dtype] = (trainer_setup(cfg, spec["model"]), cfg)
    try:
        rows = interleaved(setups, max(2, spec["steps"] // 2))
    finally:
        for s, _ in setups.values():
            s.verifier.close()
    paired = [b["step_s"] / a["step_s"] for a, b in zip(rows["float32"], rows["bfloat16"])]
    return {
        "bf16_vs_fp32_step_time": statistics.median(paired),
        "per_round_ratios": paired,
        "compute_dtype": {k: str(s.dtype).removeprefix("torch.") for k, (s, _) in setups.items()},
        "weights_dtype": {k: str(next(s.model.parameters()).dtype).removeprefix("torch.")
                          for k, (s, _) in setups.items()},
        "cpu_native_bf16": cpu_has_fast_bf16(),
        "median": {k: median_row(v) for k, v in rows.items()},
    }


