"""A training run's state: built from the config, checkpointed atomically, restored exactly.

:func:`build_state` makes the :class:`RunState` (model, optimizer, scheduler, data, RNGs,
verifier); :func:`save_state` writes it as ``checkpoints/step_<N>`` after a step;
:func:`restore_state` loads the newest checkpoint back for ``--resume``. For evaluation,
:func:`lensrl.policy.load_checkpoint` loads a checkpoint's model alone.

A checkpoint is written into a hidden temp folder and renamed to ``checkpoints/step_<N>`` only
when complete, so a run killed at any moment (even by SIGKILL) leaves either a whole checkpoint
or none; :func:`lensrl.runs.checkpoint_dirs` ignores the temp folders.

A run folder is data, not code: the weights are safetensors, the trainer state is loaded with
``torch.load(weights_only=True)`` (tensors and plain values only), and every checkpoint is
checked (manifest, then each tensor strictly) before anything is loaded from it. A damaged one
is skipped for the next older one with a warning and set aside as ``step_<N>.damaged``, never
deleted; when none is good, :class:`lensrl.runs.CheckpointError` names the file and the problem.
"""

from __future__ import annotations

import copy
import functools
import logging
import os
import pickle
import random
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from lensrl.data import ProblemSampler
from lensrl.policy import (
    TINY_PRESETS,
    add_lora,
    build_tiny,
    load_pretrained,
    load_smollm2,
    parameter_count,
    read_weights,
    strict_state_dict,
)
from lensrl.runs import (
    CONFIG_FILE,
    MANIFEST_FILE,
    METRICS_FILE,
    SAMPLES_FILE,
    CheckpointError,
    check_manifest,
    checkpoint_dirs,
    latest_checkpoint,
    make_readable,
    read_config,
    truncate_after_step,
    write_config,
    write_manifest,
)
from lensrl.train.config import (
    ConfigError,
    ModelConfig,
    OptimConfig,
    TaskConfig,
    TrainConfig,
)
from lensrl.train.precision import as_master, autocast, select_dtype

log = logging.getLogger("lensrl.train")


@dataclass
class RunState:
    """A training run in memory: the policy and its optimizer, the data position, every RNG,
    the verifier, and where and in what dtype it computes. :func:`build_state` makes it,
    :func:`save_state` checkpoints it, :func:`restore_state` loads a checkpoint back into it."""

    model: Any
    tokenizer: Any
    ref_model: Any
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    generator: torch.Generator
    py_random: random.Random
    sampler: ProblemSampler
    eval_problems: list[Any]
    prompt: Callable[[Any], str]
    verifier: Any
    device: torch.device
    dtype: torch.dtype  # what forward passes compute in; the weights stay float32

    def autocast(self) -> Any:
        """The context every forward pass of the run (rollout, π_old, update, eval) runs in."""
        return autocast(self.device, self.dtype)


def make_optimizer(model: Any, cfg: OptimConfig) -> torch.optim.Optimizer:
    """AdamW over the model's trainable parameters (only the adapters under LoRA); the fused
    kernel (one pass over each tensor, as Hugging Face's Trainer defaults to) where torch has it
    for the parameters' device."""
    device = next(model.parameters()).device.type
    trainable = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(trainable, lr=cfg.lr, betas=(cfg.betas[0], cfg.betas[1]),
                             weight_decay=cfg.weight_decay, fused=device in ("cpu", "cuda"))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("model.device = 'cuda' but no CUDA device is available")
    return torch.device(name)


def load_model(cfg: ModelConfig, seed: int) -> tuple[Any, Any]:
    """The policy named by ``cfg`` (see ModelConfig.name)."""
    from lensrl.data import ALPHABET

    if cfg.init_from:
        return load_pretrained(cfg.init_from)
    if cfg.name in TINY_PRESETS:
        return build_tiny(cfg.name, ALPHABET, seed=seed)
    if cfg.name == "smollm2":
        return load_smollm2()
    return load_pretrained(cfg.name)


def load_tasks(cfg: TaskConfig) -> tuple[list[Any], list[Any]]:
    """(train problems, held-out problems), the same split ``lensrl eval`` rebuilds."""
    from lensrl.data import heldout_problems, train_problems

    task = asdict(cfg)
    return train_problems(task), heldout_problems(task)


def build_state(cfg: TrainConfig) -> RunState:
    """Everything a run needs before its first step, from ``cfg`` (seeded by ``run.seed``)."""
    from lensrl.data import format_prompt
    from lensrl.verify import VerifierPool

    torch.manual_seed(cfg.run.seed)
    device = resolve_device(cfg.model.device)
    dtype, reason = select_dtype(cfg.model.dtype, device)
    model, tokenizer = load_model(cfg.model, cfg.run.seed)
    model = as_master(model).to(device=device)  # fp32 masters; bf16 only under autocast
    model = add_lora(model, cfg.model.lora, seed=cfg.run.seed)  # None: every weight trains
    log.info("policy: %s, %.2fM parameters, %s, %s", cfg.model.name,
             parameter_count(model) / 1e6, device, reason)
    ref_model = None
    if cfg.algo.kl_coef > 0:
        ref_model = copy.deepcopy(model).eval().requires_grad_(False)
    optimizer = make_optimizer(model, cfg.optim)
    warmup = cfg.optim.warmup_updates
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda u: min(1.0, (u + 1) / warmup) if warmup else 1.0
    )
    train_problems, held = load_tasks(cfg.task)
    template = cfg.task.template

    def prompt(problem: Any) -> str:
        return str(format_prompt(problem, tokenizer, template=template))

    return RunState(
        model=model, tokenizer=tokenizer, ref_model=ref_model, optimizer=optimizer,
        scheduler=scheduler, generator=torch.Generator(device=device).manual_seed(cfg.run.seed),
        py_random=random.Random(cfg.run.seed),
        sampler=ProblemSampler(train_problems, cfg.run.seed), eval_problems=held, prompt=prompt,
        verifier=VerifierPool(timeout=cfg.verify.timeout, strict=cfg.verify.strict_train),
        device=device, dtype=dtype,
    )


# --- the run folder at the start of a run ------------------------------------------------------

# skip_zero_advantage and share_prompt_prefix change no weight (only how the update runs), so
# a resume may toggle them; so may the number of steps and the checkpoint cadence. The folder's
# own path is not a training setting: a run folder that was moved or copied resumes.
RESUMABLE_CHANGES = {("run", "steps"), ("run", "progress"), ("run", "checkpoint_every"),
                     ("algo", "skip_zero_advantage"), ("algo", "share_prompt_prefix"),
                     ("run", "run_dir"), ("run", "keep_checkpoints"), ("run", "tensorboard")}


def open_run_dir(cfg: TrainConfig, run_dir: Path, resume: bool) -> None:
    """Create the folder and write config.json. A new run refuses a folder that holds one; a
    resume refuses settings that differ from the saved config (outside RESUMABLE_CHANGES).
    A section or key the saved config lacks (written by an older lensrl) counts as its default."""
    config_path = run_dir / CONFIG_FILE
    if resume and config_path.is_file():
        saved = TrainConfig.from_dict(read_config(run_dir), source=str(config_path)).to_dict()
        new = cfg.to_dict()
        diff = [f"{sec}.{k}" for sec in new for k in new[sec]
                if (sec, k) not in RESUMABLE_CHANGES and saved[sec][k] != new[sec][k]]
        if diff:
            raise ConfigError(f"--resume: {run_dir} was trained with other settings: "
                              f"{', '.join(diff)} differ from {config_path}")
    elif not resume and (run_dir / METRICS_FILE).exists():
        raise ConfigError(f"{run_dir} already holds a run; pass --resume or pick another --run-dir")
    run_dir.mkdir(parents=True, exist_ok=True)
    write_config(run_dir, cfg.to_dict())


# --- checkpoints -----------------------------------------------------------------------------


TRAINER_STATE_FILE = "trainer_state.pt"
_TRAINER_STATE_KEYS = ("optimizer", "scheduler", "rng", "data")


def rng_state(generator: torch.Generator, py_random: random.Random) -> dict[str, Any]:
    """Every RNG state as tensors and plain lists, so that ``weights_only=True`` loads it."""
    version, internal, gauss = py_random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "sampler": generator.get_state(),
        "python": [version, list(internal), gauss],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any], generator: torch.Generator, py_random: random.Random) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["sampler"])
    version, internal, gauss = state["python"]  # a list here, a tuple in 0.1's checkpoints
    py_random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextmanager
def _writing(final: Path, tmp: Path, what: str) -> Iterator[None]:
    """An OSError (a full disk, a quota) while writing ``what`` of a checkpoint becomes a
    CheckpointError that names the file in its final place."""
    try:
        yield
    except OSError as err:
        name = final / what
        if err.filename:
            with suppress(ValueError):
                name = final / Path(os.fsdecode(err.filename)).relative_to(tmp)
        raise CheckpointError(f"{name}: could not write the checkpoint ({err.strerror or err}); "
                              "the previous checkpoints are as they were") from err


def save_checkpoint(
    run_dir: Path,
    step: int,
    *,
    model: Any,
    tokenizer: Any,
    trainer_state: dict[str, Any],
    ref_model: Any = None,
    keep: int = 2,
) -> Path:
    """Write ``checkpoints/step_<step>`` atomically, with its manifest, and keep the newest
    ``keep`` of them. A failed write (e.g. a full disk) leaves the older checkpoints as they
    were and raises :class:`CheckpointError` naming the file."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no "Writing model shards" bar per checkpoint
    root = run_dir / "checkpoints"
    final = root / f"step_{step}"
    with _writing(final, root, ""):
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".tmp_step_{step}_"))
    try:
        with _writing(final, tmp, "model"):
            model.save_pretrained(tmp / "model")
            tokenizer.save_pretrained(tmp / "model")
        if ref_model is not None:
            with _writing(final, tmp, "ref"):
                ref_model.save_pretrained(tmp / "ref")
        with _writing(final, tmp, TRAINER_STATE_FILE):
            torch.save(trainer_state, tmp / TRAINER_STATE_FILE)
        with _writing(final, tmp, MANIFEST_FILE):
            write_manifest(tmp, step)
        make_readable(tmp)  # mkdtemp made it 0700: a colleague could not evaluate it
        if final.exists():  # re-running a step after a resume: replace it whole
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in sorted(checkpoint_dirs(run_dir))[:-keep]:
        shutil.rmtree(root / f"step_{old}", ignore_errors=True)
    return final


def load_trainer_state(path: Path) -> dict[str, Any]:
    """``trainer_state.pt`` of the checkpoint folder ``path``, loaded with ``weights_only=True``:
    tensors and plain values only, so a file that carries a pickled object is refused without
    running it. Raises :class:`CheckpointError` naming the file."""
    file = path / TRAINER_STATE_FILE
    if not file.is_file():
        raise CheckpointError(f"{file}: missing")
    try:
        state = torch.load(file, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as err:
        # torch's message names what the file asked for: "Unsupported global: GLOBAL io.open ..."
        found = re.search(r"WeightsUnpickler error: (?:Unsupported global: GLOBAL )?([^\n]*?)"
                          r"(?: was not an allowed global by default|\.\s|\n|$)", str(err))
        what = f" ({found.group(1)})" if found else ""
        raise CheckpointError(
            f"{file}: refused: it holds a Python object that would run code when loaded{what}; "
            "lensrl loads only tensors and plain values from a run folder"
        ) from None
    except Exception as err:  # truncated or not a torch file at all
        reason = re.split(r"\.\s", str(err).strip(), maxsplit=1)[0] or type(err).__name__
        raise CheckpointError(f"{file}: unreadable ({reason})") from None
    if not isinstance(state, dict) or any(k not in state for k in _TRAINER_STATE_KEYS):
        raise CheckpointError(f"{file}: not a lensrl trainer state (expected the keys "
                              f"{', '.join(_TRAINER_STATE_KEYS)})")
    return state


def _check_optimizer(saved: Any, optimizer: torch.optim.Optimizer, file: Path) -> None:
    """The saved optimizer state matches the model's parameters, count and shapes, so that
    loading it cannot fail half-way."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    try:
        n_saved = sum(len(g["params"]) for g in saved["param_groups"])
        states = saved["state"]
        wrong = [i for i, st in states.items()
                 for v in st.values() if isinstance(v, torch.Tensor) and v.dim() > 0
                 and v.shape != params[i].shape]
    except (KeyError, TypeError, IndexError) as err:
        raise CheckpointError(f"{file}: unreadable optimizer state ({err!r})") from None
    if n_saved != len(params):
        raise CheckpointError(f"{file}: the optimizer state is for {n_saved} parameters, the "
                              f"model has {len(params)}")
    if wrong:
        raise CheckpointError(f"{file}: the optimizer state of parameter {wrong[0]} has the "
                              "wrong shape")


@dataclass
class _Checked:
    """A checkpoint read and checked in full, before anything of it is loaded."""

    step: int
    model: dict[str, torch.Tensor]
    ref: dict[str, torch.Tensor] | None
    trainer: dict[str, Any]


def read_checkpoint(state: RunState, path: Path, step: int) -> _Checked:
    """Read ``path`` (``checkpoints/step_<step>``) and check it against ``state``: its manifest,
    every tensor strictly against the model's state dict (tied weights accounted for by name),
    and the trainer state. Nothing is loaded into ``state``; a problem raises CheckpointError."""
    check_manifest(path, step)
    tensors, file = read_weights(path / "model")
    model_sd = strict_state_dict(state.model, tensors, file)
    ref_sd = None
    if state.ref_model is not None:
        tensors, file = read_weights(path / "ref")
        ref_sd = strict_state_dict(state.ref_model, tensors, file)
    trainer = load_trainer_state(path)
    if trainer.get("step", step) != step:
        raise CheckpointError(f"{path / TRAINER_STATE_FILE}: holds step {trainer['step']}, "
                              f"the folder is step {step}")
    _check_optimizer(trainer["optimizer"], state.optimizer, path / TRAINER_STATE_FILE)
    return _Checked(step, model_sd, ref_sd, trainer)


def set_aside(path: Path) -> Path:
    """Rename a damaged checkpoint out of the way (``step_<N>.damaged``), keeping it for the
    user: the run will write a new ``step_<N>`` when it gets there again."""
    target = path.with_name(path.name + ".damaged")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.damaged{n}")
    os.replace(path, target)
    return target


def save_state(state: RunState, run_dir: Path, step: int, *, keep: int = 2) -> Path:
    """Checkpoint ``state`` after ``step``: the fp32 weights, the optimizer and scheduler, the
    sampler's and the global RNG states and the data position, enough for an exact resume."""
    trainer_state = {
        "step": step,
        "optimizer": state.optimizer.state_dict(),
        "scheduler": state.scheduler.state_dict(),
        "rng": rng_state(state.generator, state.py_random),
        "data": {k: int(v) for k, v in state.sampler.state_dict().items()},
    }
    return save_checkpoint(run_dir, step, model=state.model, tokenizer=state.tokenizer,
                           trainer_state=trainer_state, ref_model=state.ref_model, keep=keep)


def restore_state(state: RunState, run_dir: Path) -> int:
    """Load the newest good checkpoint of ``run_dir`` into ``state`` and drop the log rows
    written after it; returns its step (0, with empty logs, when there is none).

    Each checkpoint is checked in full first (:func:`read_checkpoint`). A damaged one is
    skipped, with a warning that names it and what is wrong, for the next older one, and is
    set aside as ``step_<N>.damaged`` once an older one loads; when none is good,
    :class:`CheckpointError` names the newest one's problem and nothing is changed."""
    found = latest_checkpoint(run_dir, functools.partial(read_checkpoint, state),
                              damaged=lambda step, err: log.warning(
                                  "--resume: checkpoint step_%d is damaged: %s", step, err))
    if found is None:
        log.warning("--resume: no checkpoint in %s, starting from step 0", run_dir)
        for name in (METRICS_FILE, SAMPLES_FILE):
            truncate_after_step(run_dir / name, -1)
        return 0
    checked = found[1]
    folders = checkpoint_dirs(run_dir)
    for step in sorted(s for s in folders if s > checked.step):
        log.warning("--resume: kept the damaged checkpoint as %s; resuming from step %d",
                    set_aside(folders[step]), checked.step)
    path = folders[checked.step]
    try:
        state.model.load_state_dict(checked.model, strict=True)
        if state.ref_model is not None:
            state.ref_model.load_state_dict(checked.ref, strict=True)
        saved = checked.trainer
        state.optimizer.load_state_dict(saved["optimizer"])
        state.scheduler.load_state_dict(saved["scheduler"])
        set_rng_state(saved["rng"], state.generator, state.py_random)
        state.sampler.load_state_dict(saved["data"])
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as err:
        raise CheckpointError(f"{path}: cannot be loaded ({err})") from None
    for name in (METRICS_FILE, SAMPLES_FILE):
        truncate_after_step(run_dir / name, checked.step)
    log.info("resumed %s from step %d", run_dir, checked.step)
    return checked.step
