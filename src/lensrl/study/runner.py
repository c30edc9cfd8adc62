"""Running the study: the shared warm-up, its step-0 evaluations, the ordered (arm, seed) runs,
resume, and the run order with its estimated time.

Each finished run (and each step-0 evaluation) adds a record to ``<results>/runs.json.gz``
(lensrl.study.records): the committed data every table is computed from.

A run folder ``<out>/<arm>/seed<s>`` is the unit of work:
* **done** when ``eval/<steps>.json`` exists (written atomically, last): skipped;
* **trained** when its last checkpoint is at ``run.steps``: only evaluated;
* **partial** when it has an earlier checkpoint (or none): ``train(..., resume=True)`` continues
  from the last checkpoint (lensrl.train.trainer), so a killed session loses at most
  ``run.checkpoint_every`` steps of one run.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lensrl.runs import CONFIG_FILE, RunLock, atomic_write_text, latest_checkpoint
from lensrl.study.config import StudyConfig, arm_train_config
from lensrl.study.records import STEP0, record_from_run, save_record
from lensrl.train.config import ConfigError

log = logging.getLogger("lensrl.study")

PROBE_FILE = "probe.json"
RUN_FILE = "study.json"  # per run: the study's own bookkeeping (eval seconds, arm, seed)


@dataclass(frozen=True)
class StudyRun:
    """One (arm, seed) of the study, in run order; ``pilot`` marks the runs done first."""

    arm: str
    seed: int
    run_dir: Path
    pilot: bool


def run_order(cfg: StudyConfig) -> list[StudyRun]:
    """Every run, in the order that makes a partial study most useful: the pilot seeds of the
    pilot arms first, then seed 0 of every arm, seed 1 of every arm, ... (each seed adds one
    paired replicate to every comparison)."""
    out: list[StudyRun] = []
    seen: set[tuple[str, int]] = set()

    def add(arm: str, seed: int, pilot: bool) -> None:
        if (arm, seed) not in seen and seed < cfg.arms[arm].seeds:
            seen.add((arm, seed))
            out.append(StudyRun(arm, seed, cfg.run_dir(arm, seed), pilot))

    for seed in range(cfg.pilot.seeds):
        for arm in cfg.pilot.arms:
            add(arm, seed, True)
    for seed in range(max(a.seeds for a in cfg.arms.values())):
        for arm in cfg.arms:
            add(arm, seed, False)
    return out


def run_progress(run_dir: Path, steps: int) -> str:
    """``done``, ``trained`` (needs its evaluation), ``partial`` or ``todo`` (see module doc)."""
    from lensrl.runs import eval_path

    if eval_path(run_dir, steps).is_file():
        return "done"
    latest = latest_checkpoint(run_dir)
    if latest is not None and latest[0] == steps:
        return "trained"
    return "partial" if (run_dir / CONFIG_FILE).is_file() else "todo"


def warmup_sft_config(cfg: StudyConfig) -> Any:
    """The SFTConfig of the shared warm-up, on the study's task (levels, template, task seed)."""
    from lensrl.train.sft import SFTConfig

    base = cfg.base_train()
    task = base.get("task", {})
    w = cfg.warmup
    # the warm-up computes in the runs' dtype, so that a pinned `model.dtype` pins both
    return SFTConfig(size=w.size, steps=w.steps, batch_size=w.batch_size, lr=w.lr, seed=w.seed,
                     levels=list(task.get("levels", [1, 2, 3, 4, 5])),
                     template=task.get("template"), task_seed=int(task.get("seed", 0)),
                     dtype=str(base.get("model", {}).get("dtype", "auto")))


def ensure_warmup(cfg: StudyConfig) -> dict[str, Any]:
    """Train the warm-up once (``<out>/warmup``, finished when ``sft.json`` exists); a finished
    warm-up made with other settings is an error, since every run must start from it."""
    from lensrl.train.sft import sft

    want = asdict(warmup_sft_config(cfg))
    marker = cfg.warmup_dir / "sft.json"
    if marker.is_file():
        done = json.loads(marker.read_text())
        diff = sorted(k for k in want if done.get("config", {}).get(k) != want[k])
        if diff:
            raise ConfigError(
                f"{cfg.source}: the warm-up in {cfg.warmup_dir} was made with other settings "
                f"({', '.join(diff)}); every arm must start from the same one: delete "
                f"{cfg.out_dir} (or pick another --out) to start the study afresh")
        return dict(done)
    log.info("warm-up: %s model, %d supervised steps -> %s", cfg.warmup.size, cfg.warmup.steps,
             cfg.warmup_dir)
    return sft(warmup_sft_config(cfg), cfg.warmup_dir)


def evaluate_run(cfg: StudyConfig, run_dir: Path, step: int, seed: int,
                 problems: int | None = None) -> float:
    """``lensrl eval`` of checkpoint ``step`` (its table goes to ``eval.log``); returns seconds."""
    from lensrl.eval import cli as eval_cli

    parser = argparse.ArgumentParser()
    eval_cli.configure_parser(parser)
    e = cfg.eval
    args = parser.parse_args([
        "--run-dir", str(run_dir), "--checkpoint", str(step),
        "--limit", str(problems or e.problems), "--samples", str(e.samples),
        "--batch-prompts", str(e.batch_prompts), "--seed", str(e.seed_base + e.seed_stride * seed),
        "--resamples", "200",  # the per-run CI is not used: the study's CIs are over seeds
    ])
    t = time.perf_counter()
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        rc = eval_cli.run(args)
    (run_dir / "eval.log").write_text(text.getvalue())
    if rc != 0:
        raise RuntimeError(f"lensrl eval of {run_dir} failed (exit {rc}): see {run_dir}/eval.log")
    return time.perf_counter() - t


def execute_run(cfg: StudyConfig, run: StudyRun) -> dict[str, Any]:
    """Train (or resume) and evaluate one run unless it is done; returns its bookkeeping."""
    from lensrl.train.trainer import train

    tcfg = arm_train_config(cfg, run.arm, run.seed)
    steps = tcfg.run.steps
    state = run_progress(run.run_dir, steps)
    if state in ("partial", "todo"):
        # resume from the last checkpoint (from step 0 when it died before the first one)
        train(tcfg, resume=state == "partial")
    eval_s = evaluate_run(cfg, run.run_dir, steps, run.seed)
    return write_run_info(cfg, run.run_dir, {
        "arm": run.arm, "seed": run.seed, "steps": steps, "eval_s": eval_s,
        "train_s": train_seconds(run.run_dir), "resumed_from": state})


def write_run_info(cfg: StudyConfig, run_dir: Path, info: dict[str, Any]) -> dict[str, Any]:
    """``study.json`` of a finished run (or step-0 evaluation): ``info`` and the provenance of
    this process, the one that trained and evaluated it. Returns what it wrote."""
    info = {**info, "provenance": run_provenance(cfg)}
    atomic_write_text(run_dir / RUN_FILE, json.dumps(info, indent=1) + "\n")
    return info


def record_run(cfg: StudyConfig, arm: str, seed: int, run_dir: Path,
               info: dict[str, Any]) -> None:
    """Add a finished run to the committed records (``<results>/runs.json.gz``) from its
    ``study.json`` info. Called in the study's own process only, so that parallel workers never
    write the file at once."""
    save_record(cfg.results, record_from_run(run_dir, arm, seed, int(info["steps"]),
                                             train_s=info.get("train_s"),
                                             eval_s=info.get("eval_s"),
                                             made_by=info.get("provenance")))


def run_provenance(cfg: StudyConfig) -> dict[str, Any]:
    """This process's code and machine (lensrl.study.records.provenance) and the warm-up's
    sha256, so that runs from two different starting checkpoints are never taken for pairs."""
    from lensrl.runs import file_sha256
    from lensrl.study.records import provenance

    weights = cfg.warmup_dir / "model.safetensors"
    return {**provenance(), "warmup_sha256": file_sha256(weights) if weights.is_file() else None}


# --- step 0: the warm-up checkpoint, scored as every run is ----------------------------------


def step0_dir(cfg: StudyConfig, seed: int) -> Path:
    return cfg.out_dir / STEP0 / f"seed{seed}"


def evaluate_step0(cfg: StudyConfig, seed: int) -> dict[str, Any]:
    """Score the shared warm-up with seed ``seed``'s evaluation settings (the same problems,
    samples and sampling seed as that seed's runs), so that each arm's change from its start is
    paired by seed. The warm-up is saved as checkpoint 0 of a baseline-arm run folder with
    0 steps, which ``lensrl eval`` reads like any other; done when its eval file exists."""
    from lensrl.train.state import build_state, open_run_dir, save_state

    run_dir = step0_dir(cfg, seed)
    if run_progress(run_dir, 0) != "done":
        tcfg = arm_train_config(cfg, cfg.stats.baseline, seed)
        tcfg.run.steps, tcfg.run.run_dir, tcfg.run.name = 0, str(run_dir), f"step0-seed{seed}"
        if latest_checkpoint(run_dir) is None:
            with RunLock(run_dir):
                open_run_dir(tcfg, run_dir, resume=run_dir.joinpath(CONFIG_FILE).is_file())
                state = build_state(tcfg)
                try:
                    save_state(state, run_dir, 0, keep=1)
                finally:
                    state.verifier.close()
        eval_s = evaluate_run(cfg, run_dir, 0, seed)
        info = write_run_info(cfg, run_dir, {"arm": STEP0, "seed": seed, "steps": 0,
                                             "eval_s": eval_s, "train_s": None})
        record_run(cfg, STEP0, seed, run_dir, info)
    return {"arm": STEP0, "seed": seed}


def sync_records(cfg: StudyConfig, *, rewrite: bool = False) -> int:
    """Record every finished run (and step-0 evaluation) on this machine that the records lack
    (a study killed between an evaluation and its record), or every one with ``rewrite``.
    Returns how many were written."""
    from lensrl.study.records import load_study_data

    have = load_study_data(cfg.results).records
    seeds = range(max(a.seeds for a in cfg.arms.values()))
    todo = [(STEP0, s, step0_dir(cfg, s), 0) for s in seeds]
    todo += [(r.arm, r.seed, r.run_dir, cfg.rl_steps) for r in run_order(cfg)]
    written = 0
    for arm, seed, run_dir, steps in todo:
        old = have.get((arm, seed))
        info_path = run_dir / RUN_FILE
        if run_progress(run_dir, steps) != "done" or not info_path.is_file():
            continue
        if old is None or old.legacy or rewrite:
            record_run(cfg, arm, seed, run_dir, json.loads(info_path.read_text()))
            written += 1
    return written


def train_seconds(run_dir: Path) -> float:
    """Σ ``time/step_s`` over the logged steps (a resumed run counts each step once)."""
    from lensrl.runs import read_metrics

    return float(sum(r.get("time/step_s", 0.0) or 0.0 for r in read_metrics(run_dir)))


def run_seconds(run_dir: Path) -> float | None:
    """Train + eval seconds of a finished run (None when its bookkeeping is missing)."""
    path = run_dir / RUN_FILE
    if not path.is_file():
        return None
    info = json.loads(path.read_text())
    return float(info.get("train_s", 0.0)) + float(info.get("eval_s", 0.0))


def run_study(cfg: StudyConfig, *, max_runs: int | None = None, jobs: int = 1) -> dict[str, Any]:
    """The warm-up, then every run not yet done, in run order (at most ``max_runs`` of them),
    ``jobs`` at a time. Returns counts; the caller writes the summary."""
    # the study folder's lock: a second `lensrl study` on it stops at once, naming the first
    with RunLock(cfg.out_dir):
        return _run_all(cfg, max_runs, jobs)


def _run_all(cfg: StudyConfig, max_runs: int | None, jobs: int = 1) -> dict[str, Any]:
    ensure_warmup(cfg)
    sync_records(cfg)
    for seed in range(max(a.seeds for a in cfg.arms.values())):
        evaluate_step0(cfg, seed)
    planned = run_order(cfg)
    done_before = sum(run_progress(r.run_dir, cfg.rl_steps) == "done" for r in planned)
    todo = [(i, r) for i, r in enumerate(planned, 1)
            if run_progress(r.run_dir, cfg.rl_steps) != "done"][:max_runs]

    def logged(i: int, run: StudyRun, info: dict[str, Any]) -> None:
        record_run(cfg, run.arm, run.seed, run.run_dir, info)
        log.info("[%d/%d] %s seed %d: %s, train %.0f s, eval %.0f s", i, len(planned), run.arm,
                 run.seed, info["resumed_from"], info["train_s"], info["eval_s"])

    if jobs <= 1:
        for i, run in todo:
            logged(i, run, execute_run(cfg, run))
    else:
        _run_parallel(cfg, todo, jobs, logged)
    remaining = sum(run_progress(r.run_dir, cfg.rl_steps) != "done" for r in planned)
    return {"planned": len(planned), "done_before": done_before, "executed": len(todo),
            "remaining": remaining}


def _run_parallel(cfg: StudyConfig, todo: list[tuple[int, StudyRun]], jobs: int,
                  logged: Callable[[int, StudyRun, dict[str, Any]], None]) -> None:
    """``jobs`` worker processes, each with ``cores // jobs`` torch threads, take the runs in
    run order. On a tiny model two 1-thread runs side by side finish more work per second than
    one 2-thread run (docs/study.md). Workers are spawned, not forked, so that no torch thread
    pool or lock is inherited; each run still holds its own run-folder lock."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = max(1, (os.cpu_count() or 1) // jobs)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"),
                             initializer=_worker_init, initargs=(threads,)) as pool:
        futures = {pool.submit(execute_run, cfg, run): (i, run) for i, run in todo}
        try:
            for fut in as_completed(futures):  # a failed run stops the study: re-raised here
                logged(*futures[fut], fut.result())
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    logging.basicConfig(level=logging.INFO, format="%(message)s")


# --- the run order and its time ------------------------------------------------------------------


def measure(cfg: StudyConfig, steps: int) -> dict[str, Any]:
    """Probe this machine: ``steps`` RL steps of the baseline and primary arms (seed 0) from the
    warm-up, and an evaluation of 64 problems; writes ``<out>/probe.json``. Also the share of
    all-wrong groups at the start of RL, the number the warm-up is tuned for."""
    from lensrl.runs import read_metrics
    from lensrl.train.trainer import train

    t = time.perf_counter()
    warm = ensure_warmup(cfg)
    warm_s = float(warm.get("seconds", time.perf_counter() - t))
    root = cfg.out_dir / "_probe"
    result: dict[str, Any] = {"steps": steps, "warmup_s": warm_s, "arms": {},
                              "threads": _threads(), "cores": os.cpu_count(),
                              "load_avg_1m": _load()}
    for arm in (cfg.stats.baseline, cfg.stats.primary_arm):
        shutil.rmtree(root / arm, ignore_errors=True)
        tcfg = arm_train_config(cfg, arm, 0)
        tcfg.run.steps, tcfg.run.run_dir, tcfg.run.name = steps, str(root / arm), f"probe-{arm}"
        train(tcfg)
        rows = read_metrics(root / arm)
        step_s = [float(r["time/step_s"]) for r in rows]
        problems = min(64, cfg.eval.problems)
        eval_s = evaluate_run(cfg, root / arm, steps, 0, problems=problems)
        result["arms"][arm] = {
            "step_s_median": statistics.median(step_s), "step_s": step_s,
            "frac_negative": [float(r["groups/frac_negative"]) for r in rows],
            "frac_mixed": [float(r["groups/frac_mixed"]) for r in rows],
            "reward_mean": [float(r["reward/mean"]) for r in rows],
            "eval_s_per_problem": eval_s / problems,
        }
    result["load_avg_1m_end"] = _load()
    atomic_write_text(cfg.out_dir / PROBE_FILE, json.dumps(result, indent=1) + "\n")
    return result


def _threads() -> int:
    import torch

    return int(torch.get_num_threads())


def _load() -> float | None:
    try:
        return float(os.getloadavg()[0])
    except OSError:
        return None


def estimate_run_seconds(cfg: StudyConfig) -> tuple[float | None, str]:
    """Seconds per run and where the number comes from: this study's finished runs (median),
    else ``<out>/probe.json`` (``--measure``), else none."""
    finished = [s for r in run_order(cfg) if (s := run_seconds(r.run_dir)) is not None]
    if finished:
        return statistics.median(finished), f"median of {len(finished)} finished runs"
    probe = cfg.out_dir / PROBE_FILE
    if probe.is_file():
        p = json.loads(probe.read_text())
        steps = cfg.rl_steps
        per_arm = [steps * a["step_s_median"] + cfg.eval.problems * a["eval_s_per_problem"]
                   for a in p["arms"].values()]
        return statistics.mean(per_arm), (
            f"{probe}: {p['steps']} probe steps of {', '.join(p['arms'])}, load "
            f"{p.get('load_avg_1m')} on {p.get('cores')} cores")
    return None, "not measured: run `lensrl study --measure 3` (or any finished run) first"


def format_status(cfg: StudyConfig) -> str:
    """The ``--dry-run`` text: runs, their states, the order and the estimated time."""
    planned = run_order(cfg)
    steps = cfg.rl_steps
    states = [run_progress(r.run_dir, steps) for r in planned]
    base = cfg.base_train()
    g = base.get("rollout", {}).get("samples_per_prompt")
    prompts = base.get("batch", {}).get("prompts_per_step")
    warm = "done" if (cfg.warmup_dir / "sft.json").is_file() else "to do"
    lines = [
        f"study {cfg.source} -> runs in {cfg.out_dir}, results in {cfg.results}",
        f"warm-up: {cfg.warmup.size} model, {cfg.warmup.steps} supervised steps ({warm})",
        f"every run: {steps} RL steps x {prompts} prompts x G={g} samples "
        f"= {steps * (prompts or 0) * (g or 0)} samples; eval {cfg.eval.problems} problems "
        f"x {cfg.eval.samples} samples",
        f"runs: {len(planned)} in {len(cfg.arms)} arms; done {states.count('done')}, "
        f"trained (eval pending) {states.count('trained')}, partial {states.count('partial')}, "
        f"to do {states.count('todo')}",
    ]
    for arm, spec in cfg.arms.items():
        mine = [s for r, s in zip(planned, states) if r.arm == arm]
        lines.append(f"  {arm:<20} {spec.estimator:<19} seeds {spec.seeds:>3}  "
                     f"done {mine.count('done')}")
    order = ", ".join(f"{r.arm}/s{r.seed}" for r, s in zip(planned, states) if s != "done")
    lines.append(f"order of the remaining runs: {order[:400]}{' ...' if len(order) > 400 else ''}")
    from lensrl.study.summary import seed_plan

    lines += seed_plan(cfg)
    per_run, source = estimate_run_seconds(cfg)
    left = len(planned) - states.count("done")
    if per_run is None:
        lines.append(f"estimated time: unknown ({source})")
    else:
        lines.append(f"estimated time: {per_run:.0f} s a run x {left} runs = "
                     f"{per_run * left / 3600:.2f} h on this machine, one run at a time (--jobs N "
                     f"runs N side by side) ({source})")
    return "\n".join(lines)
