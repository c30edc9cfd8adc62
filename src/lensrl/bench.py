"""`lensrl bench`: what LENS costs, and lensrl's trainer against TRL on the same work.

Every headline number is a ratio of two things measured side by side in this run, in
interleaved order (A B B A ...) with medians, because absolute times on a shared machine are
noise. The JSON keys are explained in docs/benchmarks.md:

- ``advantage_ms``: :func:`lensrl.core.compute_advantages` for ``grpo`` and ``lens``.
- ``lens_step_overhead``: a LENS step ÷ a GRPO step of lensrl's trainer (same everything else,
  every row trained: ``skip_zero_advantage=False``); ``lens_step_overhead_skip`` beside it with
  the trainer's default skipping of zero-advantage rows.
- ``trainer_vs_trl_throughput``: lensrl's trained tokens/s ÷ TRL ``GRPOTrainer``'s, the two
  alternating step by step.
- ``flop_floor_ratio``: lensrl's step time ÷ its FLOPs at this run's measured matmul rate.
- ``trl_lens_step_overhead`` (lensrl.bench_trl) and ``verify_pool_speedup`` (lensrl.verify.bench).
- ``scaling``: step time and peak memory against G and completion length.
- ``speedups``: the update with and without its exact savings (trimmed micro-batches, the shared
  prompt prefix) and the rollout with either decoder, on the same work.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import platform
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger("lensrl.bench")

GOALS = {
    "lens_step_overhead": ("<=", 1.05),
    "trainer_vs_trl_throughput": (">=", 1.5),
    "flop_floor_ratio": ("<=", 2.0),
    "trl_lens_step_overhead": ("<=", 1.15),
    "verify_pool_speedup": (">=", 1.6),
}

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


# --- measuring ------------------------------------------------------------------------------


def abba(names: Sequence[str], r: int) -> list[str]:
    """Round ``r``'s order of the variants ``names``: as given on even rounds, reversed on odd
    ones (A B, B A, A B, ...), so that no variant always runs first or last under a drifting
    machine load. Every interleaved measurement of lensrl's benchmarks uses it."""
    return list(names) if r % 2 == 0 else list(names)[::-1]


def matmul_gflops(size: int = 1024, reps: int = 5) -> float:
    """Best fp32 ``size``² matmul rate of ``reps`` tries, in GFLOP/s (the machine's limit)."""
    a = torch.randn(size, size)
    b = torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * size**3 / best / 1e9


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


class PeakRSS:
    """Peak resident memory above the level at entry, sampled every 5 ms by a thread.

    CPU tensors have no allocator statistics like CUDA's; RSS over a baseline is what the
    operating system charges, and a sampler catches peaks inside a step.
    """

    def __init__(self) -> None:
        self.base = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss())

    def __enter__(self) -> PeakRSS:
        _trim()  # hand memory freed by earlier work back to the OS, or it hides this peak
        self.base = self.peak = _rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())

    @property
    def mib(self) -> float:
        """Peak above the level at entry."""
        return (self.peak - self.base) / 2**20

    @property
    def total_mib(self) -> float:
        """Peak of the whole process (model, Python, libraries included)."""
        return self.peak / 2**20


def _trim() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _rss() -> int:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def is_linear(xs: list[float], ys: list[float], tolerance: float = 0.15) -> dict[str, Any]:
    """Does ``y`` grow linearly with ``x``? A least-squares line ``y = a + b·x`` (``a``: the
    fixed cost per step) and its worst relative miss; linear when that is within ``tolerance``."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    a = my - b * mx
    miss = max(abs(a + b * x - y) / y for x, y in zip(xs, ys))
    return {"x": xs, "y": ys, "intercept": a, "slope": b, "max_rel_residual": miss,
            "linear": miss <= tolerance}


# --- lensrl's trainer -----------------------------------------------------------------------


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
    from lensrl.config import TrainConfig

    n = prompts * group_size
    return TrainConfig.from_dict({
        "model": {"name": "tiny", "size": "nano", "dtype": dtype, "device": "cpu",
                  "logprob_micro_batch": n},
        "task": {"train_problems": 200, "eval_problems": 0, "template": template_text(template)},
        "rollout": {"samples_per_prompt": group_size, "max_new_tokens": max_new_tokens},
        "algo": {"estimator": estimator, "prompts_per_rollout": prompts,
                 "prompts_per_update": prompts, "micro_batch": n,
                 "skip_zero_advantage": skip_zero_advantage},
        "optim": {"lr": 1e-6},
        "run": {"run_dir": run_dir, "steps": 1, "progress": False, "log_samples": 0},
    })


def trainer_setup(cfg: Any, model_name: str, *, fixed_prompts: bool = False) -> Any:
    """``build_setup(cfg)`` with the bench's model (same seed, hence same weights, each time).

    ``fixed_prompts``: every step uses the same ``prompts_per_rollout`` problems, as the TRL
    comparison does."""
    from lensrl.setup import ProblemSampler, build_setup, make_optimizer

    s = build_setup(cfg)
    model, tokenizer = build_model(model_name, seed=cfg.run.seed)
    model.to(device=s.device, dtype=next(s.model.parameters()).dtype)
    optimizer = make_optimizer(model, cfg.optim)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda u: 1.0)
    sampler = s.sampler
    if fixed_prompts:
        sampler = ProblemSampler(s.sampler.take(cfg.algo.prompts_per_rollout), cfg.run.seed)
    return dataclasses.replace(s, model=model, tokenizer=tokenizer, optimizer=optimizer,
                               scheduler=scheduler, sampler=sampler)


def trainer_step(s: Any, cfg: Any) -> dict[str, float]:
    """One step of lensrl's trainer (phases 1–5 of lensrl.trainer.train), timed per phase.

    ``compute_s`` is the step without verification (TRL's side uses a trivial reward);
    token counts feed the throughput and FLOP-floor numbers."""
    from lensrl.trainer import collect, score, update

    t0 = time.perf_counter()
    batch, times = collect(s, cfg)
    t = time.perf_counter()
    batch = score(s, cfg, batch)
    score_s = time.perf_counter() - t
    t = time.perf_counter()
    metrics, _ = update(s, cfg, batch, 0)
    update_s = time.perf_counter() - t
    step_s = time.perf_counter() - t0
    ro = batch.rollout
    G = cfg.rollout.samples_per_prompt
    return {
        "step_s": step_s,
        "compute_s": step_s - times["time/verify_s"],
        "rollout_s": times["time/rollout_s"],
        "verify_s": times["time/verify_s"],
        "score_s": score_s,
        "update_s": update_s,
        "completion_tokens": float(ro.completion_mask.sum()),
        # prompt tokens are prefilled once per prompt, completions once per row
        "generated_tokens": float(ro.prompt_mask[::G].sum() + ro.completion_mask.sum()),
        "trained_tokens": float(ro.attention_mask.sum()),
        "completion_len_mean": float(ro.completion_mask.sum(-1).float().mean()),
        "prompt_len_mean": float(ro.prompt_mask.sum(-1).float().mean()),
        "rows_trained_frac": metrics["opt/rows_trained_frac"],
    }


def _median(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in rows) for k in rows[0]}


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence the trainer's per-setup log lines during timing."""
    logger = logging.getLogger("lensrl.train")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


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
    med = {k: _median(v) for k, v in rows.items()}
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
    round (``lensrl.bench_trl.TrlStepper`` runs TRL one step at a time), so both see the same
    machine load; the headline is the median over rounds of the round's ratio (each side's
    tokens ÷ its time in that round), as for ``lens_step_overhead``."""
    from lensrl.bench_trl import TrlStepper
    from lensrl.policy import parameter_count

    P, G, T = spec["prompts"], spec["group_size"], spec["max_new_tokens"]
    cfg = train_config(str(tmp / "throughput"), estimator="lens", prompts=P, group_size=G,
                       max_new_tokens=T, template=spec["template"])
    s = trainer_setup(cfg, spec["model"], fixed_prompts=True)
    prompts = [s.prompt(p) for p in s.sampler.problems]
    params = parameter_count(s.model)
    rows: list[dict[str, float]] = []
    trl_steps: list[tuple[float, int]] = []
    ratios: list[float] = []
    try:
        with TrlStepper(model_factory=lambda: build_model(spec["model"], seed=cfg.run.seed),
                        prompts=prompts, group_size=G, max_completion_length=T) as trl, \
                PeakRSS() as mem:
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
    finally:
        s.verifier.close()
    med = _median(rows)
    lens_rates = [r["completion_tokens"] / r["compute_s"] for r in rows]
    trl_rates = [tokens / seconds for seconds, tokens in trl_steps]
    pooled_lens = sum(r["completion_tokens"] for r in rows) / sum(r["compute_s"] for r in rows)
    pooled_trl = sum(t for _, t in trl_steps) / sum(sec for sec, _ in trl_steps)
    gen_floor = 2 * params * med["generated_tokens"] / (rate_gflops * 1e9)
    upd_floor = 6 * params * med["trained_tokens"] / (rate_gflops * 1e9)
    # The update shares each prompt across its G rows, so it need not do 6·params for every
    # row's prompt tokens: the floor of that work counts each prompt once (= generated tokens).
    upd_floor_unique = 6 * params * med["generated_tokens"] / (rate_gflops * 1e9)
    return {
        "trainer_vs_trl_throughput": statistics.median(ratios),
        "per_round_ratios": ratios,
        "ratio_of_median_rates": statistics.median(lens_rates) / statistics.median(trl_rates),
        "flop_floor_ratio": med["compute_s"] / (gen_floor + upd_floor),
        "flop_floor_ratio_prompt_once": med["compute_s"] / (gen_floor + upd_floor_unique),
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
        "floor": {"params": params, "matmul_gflops": rate_gflops,
                  "rollout_s": gen_floor, "update_s": upd_floor,
                  "update_prompt_once_s": upd_floor_unique,
                  "rollout_ratio": med["rollout_s"] / gen_floor,
                  "update_ratio": med["update_s"] / upd_floor,
                  "update_ratio_prompt_once": med["update_s"] / upd_floor_unique},
        "setup": {"model": spec["model"], "params": params, "prompts": P, "group_size": G,
                  "max_new_tokens": T, "passes": 1, "steps": spec["steps"], "dtype": DTYPE,
                  "template": spec["template"], "template_text": template_text(spec["template"]),
                  "prompt_examples": prompts[:2],
                  "skip_zero_advantage": cfg.algo.skip_zero_advantage,
                  "trained_tokens": "completion tokens, once per pass (both sides)",
                  "rate": "per round (TRL, lensrl, lensrl, TRL): each side's tokens ÷ its time; "
                          "median of the rounds' ratios"},
    }


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
                med = _median(interleaved({"x": (s, cfg)}, spec["scaling_steps"])["x"])
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
    from lensrl.trainer import collect, score, update

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


# --- the command ----------------------------------------------------------------------------


def precision(spec: dict[str, Any], tmp: Path) -> dict[str, Any]:
    """bf16 (autocast over fp32 weights) ÷ fp32 step time of lensrl's trainer, interleaved in
    one run on the same work; with the compute dtype each ran in and whether this CPU has
    native bf16 (without it bf16 is emulated, and the ratio says how much that costs)."""
    from lensrl.policy import cpu_has_fast_bf16

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
        "median": {k: _median(v) for k, v in rows.items()},
    }


def machine() -> dict[str, Any]:
    import transformers

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    return {
        "cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__,
        "transformers": transformers.__version__, "threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(), "load_avg_1m": load,
        "python": platform.python_version(),
    }


def _section(results: dict[str, Any], key: str, fn: Callable[[], Any]) -> None:
    """Run one measurement; a failure (e.g. TRL missing) is recorded, not fatal."""
    t = time.perf_counter()
    log.info("bench: %s ...", key)
    try:
        results[key] = fn()
    except Exception as exc:  # noqa: BLE001 - a benchmark section must not sink the others
        log.warning("bench: %s failed: %s: %s", key, type(exc).__name__, exc)
        results[key] = {"error": f"{type(exc).__name__}: {exc}"}
    results.setdefault("elapsed_s", {})[key] = time.perf_counter() - t


def headline(results: dict[str, Any]) -> dict[str, Any]:
    """The issue's numbers, each with its goal and whether it holds."""
    values = {
        "lens_step_overhead": results.get("lens", {}).get("lens_step_overhead"),
        "trainer_vs_trl_throughput":
            results.get("throughput", {}).get("trainer_vs_trl_throughput"),
        "flop_floor_ratio": results.get("throughput", {}).get("flop_floor_ratio"),
        "trl_lens_step_overhead": results.get("trl", {}).get("trl_lens_step_overhead"),
        "verify_pool_speedup": results.get("verify", {}).get("verify_pool_speedup"),
    }
    out = {}
    for key, value in values.items():
        op, goal = GOALS[key]
        met = None if value is None else (value <= goal if op == "<=" else value >= goal)
        out[key] = {"value": value, "goal": f"{op} {goal}", "meets_goal": met}
    return out


def _trl_overhead(quick: bool) -> dict[str, Any]:
    from lensrl.bench_trl import measure_trl_lens_overhead

    return measure_trl_lens_overhead(quick=quick)


def _verify_bench(quick: bool) -> dict[str, Any]:
    from lensrl.verify.bench import run as verify_bench

    return verify_bench(quick=quick)


def bench(quick: bool, only: set[str] | None = None) -> dict[str, Any]:
    spec = dict(QUICK if quick else FULL)
    spec["template_text"] = template_text(spec["template"])
    spec["dtype"] = {"lensrl": DTYPE, "trl": DTYPE}
    results: dict[str, Any] = {"quick": quick, "spec": spec, "machine": machine()}
    want = (lambda k: k in only) if only else (lambda k: True)
    rates = [matmul_gflops()]
    with tempfile.TemporaryDirectory() as tmp, _quiet():
        if want("advantage"):
            _section(results, "advantage_ms", lambda: advantage_ms(
                spec["advantage_n"], reps=spec["advantage_reps"]))
        if want("lens"):
            _section(results, "lens", lambda: lens_step_overhead(spec, Path(tmp)))
        if want("throughput"):
            rates.append(matmul_gflops())
            _section(results, "throughput", lambda: trainer_vs_trl(spec, Path(tmp), max(rates)))
        if want("scaling"):
            _section(results, "scaling", lambda: scaling(spec, Path(tmp)))
        if want("speedups"):
            _section(results, "speedups", lambda: speedups(spec, Path(tmp)))
        if want("precision"):
            _section(results, "precision", lambda: precision(spec, Path(tmp)))
    if want("trl"):
        _section(results, "trl", lambda: _trl_overhead(quick))
    if want("verify"):
        _section(results, "verify", lambda: _verify_bench(quick))
    rates.append(matmul_gflops())
    results["matmul_gflops"] = {"runs": rates, "max": max(rates)}
    results["machine"]["load_avg_1m_end"] = machine()["load_avg_1m"]
    results["headline"] = headline(results)
    # no goal of its own: LENS trains the all-wrong groups GRPO skips (docs/benchmarks.md)
    results["lens_step_overhead_skip"] = results.get("lens", {}).get("lens_step_overhead_skip")
    return results


SECTIONS = ("advantage", "lens", "throughput", "scaling", "speedups", "precision", "trl",
            "verify")


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true",
                   help="smaller model and batches (minutes on 2 cores)")
    p.add_argument("--out", type=Path, default=Path("bench/results.json"), help="JSON to write")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's own choice)")
    p.add_argument("--only", action="append", choices=SECTIONS,
                   help="run only this section (repeatable)")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.threads:
        torch.set_num_threads(args.threads)
    t = time.perf_counter()
    results = bench(args.quick, set(args.only) if args.only else None)
    results["elapsed_s"]["total"] = time.perf_counter() - t
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    for key, h in results["headline"].items():
        value = "n/a" if h["value"] is None else f"{h['value']:.3f}"
        mark = {True: "ok", False: "MISSED", None: "-"}[h["meets_goal"]]
        print(f"{key:28s} {value:>8s}  goal {h['goal']:8s} {mark}")
    skip = results.get("lens_step_overhead_skip")
    if skip is not None:
        print(f"{'lens_step_overhead_skip':28s} {skip:8.3f}  (no goal: LENS trains all-wrong "
              "groups that GRPO skips)")
    print(f"wrote {args.out}")
    return 0
