"""The single-process trainer, ``train(cfg)``, in call order (``lensrl train`` is lensrl.train.cli).

One step = one rollout batch of ``batch.prompts_per_step`` prompts × ``samples_per_prompt``
samples, scored once with :func:`lensrl.core.compute_advantages`, then split into updates of
``batch.prompts_per_update`` prompts (the paper: 128-prompt rollouts, 4 updates of 32).
"""

from __future__ import annotations

import functools
import logging
import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lensrl.core import (
    compute_advantages,
    group_diagnostics,
    group_types,
    policy_loss,
    sequence_mean_logprob,
)
from lensrl.policy import token_logprobs
from lensrl.rollout import Rollout, generate
from lensrl.runs import RunLock, RunLog, checkpoint_dirs, remove_failed_start
from lensrl.train.batching import (
    SharedPrefix,
    can_share_prefix,
    plan_micro_batches,
    trim,
    trim_completion,
)
from lensrl.train.config import TrainConfig
from lensrl.train.scored import Collected, ScoredBatch, batch_metrics, nonfinite_rows, sample_rows
from lensrl.train.state import RunState, build_state, open_run_dir, restore_state, save_state
from lensrl.train.stop import StopRequests, TrainingInterrupted
from lensrl.verify.verdict import TIMEOUT

log = logging.getLogger("lensrl.train")


class TrainingError(RuntimeError):
    """The run cannot go on (e.g. too many non-finite updates in a row)."""


class RunFinished(Exception):
    """``--resume`` of a run whose newest good checkpoint is already at ``run.steps``."""

    def __init__(self, step: int, run_dir: Path) -> None:
        super().__init__(f"{run_dir}: already finished at step {step}")
        self.step, self.run_dir = step, run_dir


def train(cfg: TrainConfig, *, resume: bool = False) -> Path:
    """Train per ``cfg``; returns the run folder. See docs/metrics.md for what is logged.

    The run folder is locked for the whole run (:class:`lensrl.runs.RunLock`): a second
    ``train`` on it raises ``RunLockedError``. SIGINT/SIGTERM stop the run after the current step
    with a checkpoint and raise :class:`TrainingInterrupted`; a resume with nothing left to do
    raises :class:`RunFinished`."""
    run_dir = cfg.run.path
    created = not run_dir.exists()
    try:
        with RunLock(run_dir), StopRequests() as stop:
            open_run_dir(cfg, run_dir, resume)
            state = build_state(cfg)
            try:
                start = restore_state(state, run_dir) if resume else 0
                if resume and start >= cfg.run.steps:  # after restore: a damaged newest
                    raise RunFinished(start, run_dir)  # checkpoint may have been skipped
                _loop(state, cfg, run_dir, start, stop)
            finally:
                state.verifier.close()
    except BaseException:
        if created:  # a start that failed (bad data, no model) leaves no half-made run folder
            remove_failed_start(run_dir)
        raise
    return run_dir


def _loop(state: RunState, cfg: TrainConfig, run_dir: Path, start: int, stop: StopRequests) -> None:
    runlog = RunLog(run_dir, tensorboard=cfg.run.tensorboard)
    bar = _progress(cfg, start)
    bad_updates = 0
    try:
        if cfg.run.eval_every and start == 0:  # the starting point, for the curves
            runlog.metrics(0, _evaluate(state, cfg, run_dir, 0))
        for step in range(start + 1, cfg.run.steps + 1):
            t0 = time.perf_counter()
            # 1–5. collect, score, update, with the metrics to log
            batch, metrics, bad_updates = train_step(state, cfg, bad_updates)
            # 6–7. evaluate (its metrics join the step's), log, checkpoint
            if cfg.run.eval_every and (step % cfg.run.eval_every == 0 or step == cfg.run.steps):
                t = time.perf_counter()
                metrics.update(_evaluate(state, cfg, run_dir, step))
                metrics["time/eval_s"] = time.perf_counter() - t
            metrics["time/step_s"] = time.perf_counter() - t0
            runlog.metrics(step, metrics)
            runlog.samples(step, sample_rows(batch, state.prompt, cfg.run.log_samples))
            every = cfg.run.checkpoint_every
            due = (every and step % every == 0) or step == cfg.run.steps
            if (due or stop.signum is not None) and step not in checkpoint_dirs(run_dir):
                save_state(state, run_dir, step, keep=cfg.run.keep_checkpoints)
            _advance(bar, metrics)
            if stop.signum is not None and step < cfg.run.steps:
                raise TrainingInterrupted(step, stop.signum, run_dir)
    finally:
        runlog.close()
        if bar is not None:
            bar.close()


def train_step(state: RunState, cfg: TrainConfig, bad_updates: int = 0,
               ) -> tuple[ScoredBatch, dict[str, float], int]:
    """Phases 1–5 of a step (no evaluation, log or checkpoint): the batch, its metrics, each
    phase's wall time among them (``time/rollout_s``, ``time/verify_s``, ``time/score_s``,
    ``time/update_s``), and the count of non-finite updates in a row. The benchmarks time the
    trainer through this function and these times (lensrl.bench.trainer)."""
    # 1–3. sample prompts, roll out, verify (resampling under dynamic_sampling)
    batch, times = collect(state, cfg)
    # 4. score with lensrl.core
    t = time.perf_counter()
    scored = score(state, cfg, batch)
    times["time/score_s"] = time.perf_counter() - t
    # 5. clipped-loss updates
    t = time.perf_counter()
    update_metrics, bad_updates = update(state, cfg, scored, bad_updates)
    times["time/update_s"] = time.perf_counter() - t
    # what step 6 logs
    metrics = {**batch_metrics(scored), **scored.diagnostics, **update_metrics, **times}
    return scored, metrics, bad_updates


# --- phases ---------------------------------------------------------------------------------


def collect(state: RunState, cfg: TrainConfig) -> tuple[Collected, dict[str, float]]:
    """Roll out ``batch.prompts_per_step`` prompts and verify them; with dynamic sampling keep
    only mixed groups and roll out more prompts, up to ``max_resample_rounds`` extra times."""
    G = cfg.rollout.samples_per_prompt
    times = {"time/rollout_s": 0.0, "time/verify_s": 0.0}
    kept: list[tuple[Rollout, list[Any], Tensor]] = []
    n_kept = n_seen = 0
    rounds = 1 + (cfg.algo.max_resample_rounds if cfg.algo.dynamic_sampling else 0)
    for _ in range(rounds):
        problems = state.sampler.take(cfg.batch.prompts_per_step - n_kept)
        t = time.perf_counter()
        with state.autocast():
            ro = generate(
                state.model,
                state.tokenizer,
                [state.prompt(p) for p in problems],
                samples_per_prompt=G,
                max_new_tokens=cfg.rollout.max_new_tokens,
                temperature=cfg.rollout.temperature,
                top_p=cfg.rollout.top_p,
                generator=state.generator,
            )
        times["time/rollout_s"] += time.perf_counter() - t
        t = time.perf_counter()
        golds = [p.answer for p in problems for _ in range(G)]
        verdicts = state.verifier.verify_batch(golds, ro.texts)  # verify.strict_train; binary
        times["time/verify_s"] += time.perf_counter() - t
        timeouts = sum(v.reason == TIMEOUT for v in verdicts)
        if timeouts:  # logged only when some pair ran out of time even on its retry
            times["verify/timeouts"] = times.get("verify/timeouts", 0.0) + timeouts
        correct = torch.tensor(
            [math.nan if v.correct is None else float(v.correct) for v in verdicts],
            device=state.device,
        )
        n_seen += len(problems)
        ro_all, problems_all, correct_all = ro, problems, correct
        if cfg.algo.dynamic_sampling:
            keep = group_types(correct, group_size=G).mixed
            ro, correct = ro.groups(keep, G), correct.reshape(-1, G)[keep].flatten()
            problems = [p for p, k in zip(problems, keep.tolist()) if k]
        kept.append((ro, problems, correct))
        n_kept += len(problems)
        if n_kept >= cfg.batch.prompts_per_step:
            break
    if n_kept == 0:  # no mixed group at all: train on the last round rather than nothing
        kept = [(ro_all, problems_all, correct_all)]
        n_kept = len(problems_all)
    rollout = Rollout.concat([k[0] for k in kept], state.tokenizer.pad_token_id)
    problems = [p for k in kept for p in k[1]]
    correct = torch.cat([k[2] for k in kept])
    if cfg.algo.dynamic_sampling:
        times["dapo/kept_frac"] = n_kept / max(n_seen, 1)
    return Collected(rollout, problems, correct), times


def score(state: RunState, cfg: TrainConfig, batch: Collected) -> ScoredBatch:
    """π_old and advantages. With temperature 1 and top-p 1 the sampler's log-probs are the
    policy's own (tested), so they are reused; otherwise one no-grad forward recomputes them."""
    ro = batch.rollout
    if cfg.rollout.temperature == 1.0 and cfg.rollout.top_p == 1.0:
        old = ro.sampler_logprobs
    else:
        with torch.no_grad(), state.autocast():
            old = token_logprobs(
                state.model,
                ro.input_ids,
                ro.attention_mask,
                ro.completion_ids.shape[1],
                micro_batch=cfg.batch.rows_per_logprob_pass,
                temperature=cfg.rollout.temperature,
            )
        old = old * ro.completion_mask
    mean_lp = sequence_mean_logprob(old, ro.completion_mask)
    G, a = cfg.rollout.samples_per_prompt, cfg.algo
    adv = compute_advantages(
        batch.correct, mean_lp, group_size=G, estimator=a.estimator, alpha=a.alpha,
        std_ddof=a.std_ddof, eps=a.eps, d_floor=a.d_floor,
    )
    diag = group_diagnostics(batch.correct, mean_lp, adv, group_size=G, d_floor=a.d_floor)
    return ScoredBatch(ro, batch.problems, batch.correct, old, adv, diag)


# Per-row metrics of lensrl.core.policy_loss: with skip_zero_advantage they are averaged over
# the rows that were trained, so an update that trained none has no value for them.
_ROW_METRICS = ("clip/frac", "clip/frac_low", "clip/frac_high", "policy/approx_kl",
                "policy/ratio_mean")


def update(
    state: RunState, cfg: TrainConfig, batch: ScoredBatch, bad_updates: int, *,
    call_cost: int | None = None,
) -> tuple[dict[str, float], int]:
    """Optimizer updates over mini-batches of ``batch.prompts_per_update`` groups, with gradient
    accumulation over ``batch.rows_per_micro_batch`` rows (:func:`_accumulate`). A non-finite loss or gradient
    skips the update without touching the weights (counted in ``train/skipped_nonfinite``, the
    rows that carry it logged); ``optim.max_bad_updates`` in a row stop the run.

    With ``algo.skip_zero_advantage`` and no KL term, rows whose advantage is exactly 0 (their
    per-token loss is ``-min(ρ·0, clip(ρ)·0) = 0``, so their gradient is exactly 0) get no
    forward or backward; the gradient is the same up to float summation order. An update with
    no trained row still steps the optimizer, with zero gradients, exactly as before (AdamW's
    moments and step count advance the same way). ``call_cost``: the micro-batch planner's cost
    of one forward call (:func:`lensrl.train.batching.plan_micro_batches`; benchmarks vary it)."""
    a, G = cfg.algo, cfg.rollout.samples_per_prompt
    n_rows = batch.correct.shape[0]
    rows_per_update = cfg.batch.prompts_per_update * G
    skip_zero = a.skip_zero_advantage and a.kl_coef == 0 and state.ref_model is None
    adv_rows = batch.advantages if batch.advantages.dim() == 1 else batch.advantages.abs().amax(-1)
    totals: dict[str, list[float]] = {}
    skipped = 0
    n_trained = 0
    state.model.train()
    for start in range(0, n_rows, rows_per_update):
        rows = torch.arange(start, min(start + rows_per_update, n_rows))
        trained = rows[(adv_rows[rows] != 0).cpu()] if skip_zero else rows
        n_trained += len(trained)
        state.optimizer.zero_grad(set_to_none=True)
        new_logprobs: list[tuple[Tensor, Tensor]] = []
        parts = _accumulate(state, cfg, batch, rows, trained, call_cost, new_logprobs)
        grad_norm = float(torch.nn.utils.clip_grad_norm_(state.model.parameters(), cfg.optim.grad_clip))
        if not (math.isfinite(grad_norm) and math.isfinite(parts["loss/policy"])):
            state.optimizer.zero_grad(set_to_none=True)
            skipped += 1
            bad_updates += 1
            log.warning("non-finite %s: update skipped, the weights are untouched (%d in a row); %s",
                        "loss" if not math.isfinite(parts["loss/policy"]) else "gradient norm",
                        bad_updates, nonfinite_rows(batch, rows, new_logprobs))
            if bad_updates >= cfg.optim.max_bad_updates:
                raise TrainingError(
                    f"{bad_updates} updates in a row had a non-finite loss or gradient "
                    f"(optim.max_bad_updates = {cfg.optim.max_bad_updates}); stopping with the "
                    "weights and checkpoints of the last good update. "
                    "Try a lower optim.lr or model.dtype=float32."
                )
            continue
        bad_updates = 0
        state.optimizer.step()
        state.scheduler.step()
        parts["grad/norm"] = grad_norm
        for k, v in parts.items():
            totals.setdefault(k, []).append(v)
    out = {}
    for k, values in totals.items():
        if k in _ROW_METRICS:  # updates that trained no row have no value
            values = [x for x in values if not math.isnan(x)]
        out[k] = sum(values) / len(values) if values else math.nan
    out["opt/skipped_updates"] = float(skipped)
    if skipped:  # only on steps that skipped one, so that a healthy run's metrics are unchanged
        out["train/skipped_nonfinite"] = float(skipped)
    out["opt/rows_trained_frac"] = n_trained / max(n_rows, 1)
    out["opt/lr"] = float(state.scheduler.get_last_lr()[0])
    return out, bad_updates


def _accumulate(
    state: RunState, cfg: TrainConfig, batch: ScoredBatch, rows: Tensor, trained: Tensor,
    call_cost: int | None = None, new_logprobs: list[tuple[Tensor, Tensor]] | None = None,
) -> dict[str, float]:
    """Gradient of one update's loss over ``rows`` into ``.grad``, running only ``trained``
    (``rows`` without the skipped ones); returns the loss metrics. ``new_logprobs``, if given,
    receives each micro-batch's rows and which of them have a non-finite π_θ log-prob (kept as
    tensors: looked at only when the update turns out non-finite).

    Micro-batches hold rows of similar length without the columns that are padding in all of
    them, and with ``algo.share_prompt_prefix`` each prompt runs once (lensrl.train.batching): the
    same values, at a fraction of the padded cost. Each micro-batch is weighted by its share of
    the normaliser of ALL ``rows``, so the gradient does not depend on how they are cut."""
    ro, a, G = batch.rollout, cfg.algo, cfg.rollout.samples_per_prompt
    prompt_len = ro.prompt_ids.shape[1]
    temperature = cfg.rollout.temperature
    tokens = float(ro.completion_mask[rows].sum().clamp(min=1))
    parts: dict[str, float] = {"loss/policy": 0.0}
    trained_share = 0.0
    shared = None
    if a.share_prompt_prefix and G > 1 and prompt_len > 1 and can_share_prefix(state.model) and len(trained):
        groups = torch.unique(trained // G)  # prompts with a row to train, sorted
        with state.autocast():
            shared = SharedPrefix(state.model, ro.prompt_ids[groups * G], ro.prompt_mask[groups * G],
                                  groups)
    plan = plan_micro_batches(trained, ro.prompt_mask.sum(-1), ro.completion_mask.sum(-1),
                              cfg.batch.rows_per_micro_batch, call_cost=call_cost)
    for mb in plan:
        ids, mask = trim(ro.input_ids, mb, prompt_len), trim(ro.attention_mask, mb, prompt_len)
        with state.autocast():  # forward only: backward runs outside autocast, as torch advises
            if shared is not None:
                logprobs = shared.logprobs(mb, ids, mask, G, temperature=temperature)
            else:
                logprobs = token_logprobs(state.model, ids, mask, mb.completion_len,
                                    temperature=temperature)
            ref = None
            if state.ref_model is not None:
                with torch.no_grad():
                    ref = token_logprobs(state.ref_model, ids, mask, mb.completion_len,
                                         temperature=temperature)
        completion_mask = trim_completion(ro.completion_mask, mb)
        if new_logprobs is not None:
            new_logprobs.append((mb.rows, (~torch.isfinite(logprobs.detach())
                                           & completion_mask.bool()).any(-1)))
        loss, m = policy_loss(
            logprobs, trim_completion(batch.old_logprobs, mb),
            trim_completion(batch.advantages, mb), completion_mask,
            clip_low=a.clip_low, clip_high=a.clip_high, aggregation=a.aggregation,
            kl_coef=a.kl_coef, ref_logprobs=ref, norm_tokens=cfg.rollout.max_new_tokens,
        )
        share = (float(completion_mask.sum()) / tokens if a.aggregation == "token_mean"
                 else len(mb.rows) / len(rows))
        (loss * share).backward()
        trained_share += share
        for k, v in m.items():
            parts[k] = parts.get(k, 0.0) + v * share
    if shared is not None:
        shared.backward()  # the micro-batches' gradient through the shared prompts
    if len(trained) < len(rows):
        # per-row metrics: a mean over the trained rows (the loss is already the update's)
        for k in _ROW_METRICS:
            parts[k] = parts[k] / trained_share if trained_share > 0 else math.nan
        if len(trained) == 0:  # what the skipped backward would have left: zeros
            for p in state.model.parameters():
                if p.requires_grad:
                    p.grad = torch.zeros_like(p)
    return parts


def _evaluate(state: RunState, cfg: TrainConfig, run_dir: Path, step: int) -> dict[str, float]:
    from lensrl.eval import evaluate, summary_metrics, write_eval

    if not state.eval_problems:
        return {}
    with state.autocast():
        result = evaluate(
            state.model, state.tokenizer, state.eval_problems,
            prompts=[state.prompt(p) for p in state.eval_problems], samples=cfg.run.eval_samples,
            temperature=cfg.rollout.temperature, top_p=cfg.rollout.top_p,
            max_new_tokens=cfg.rollout.max_new_tokens, seed=cfg.run.seed, step=step,
            verify=functools.partial(state.verifier.verify_batch, strict=cfg.verify.strict_eval),
        )
    result["step"] = step
    write_eval(run_dir, step, result)
    return summary_metrics(result)


# --- helpers --------------------------------------------------------------------------------

def _progress(cfg: TrainConfig, start: int) -> Any:
    if not cfg.run.progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=cfg.run.steps, initial=start, desc=cfg.run.name, unit="step")


def _advance(bar: Any, m: dict[str, float]) -> None:
    if bar is None:
        return
    bar.set_postfix(reward=f"{m['reward/mean']:.3f}", neg=f"{m['groups/frac_negative']:.2f}",
                    refresh=False)
    bar.update(1)
