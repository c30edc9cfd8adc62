"""Typed training configuration: one dataclass per concern, validated on construction.

Batch quantities live in one section, ``batch``, each named by its unit (prompts or rows).
Errors name the field (as ``section.field``) and the allowed range. ``TrainConfig.to_dict`` is
what lands in ``runs/<name>/config.json``.

Every value of a YAML file, a ``--set`` or a ``config.json`` is converted to its field's type
(lensrl.train.coerce.convert). Keys renamed in 0.2 still load, with a warning
(lensrl.train.migrate).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from lensrl.core import AGGREGATIONS, ESTIMATORS, LENS_ALPHA, LENS_D_FLOOR

# ConfigError and check are the config's own error and check: callers import them from here
from lensrl.train.coerce import ConfigError as ConfigError
from lensrl.train.coerce import check as check
from lensrl.train.coerce import convert
from lensrl.train.migrate import migrate, renamed_override

# model.dtype / sft.dtype: the compute dtype (lensrl.train.precision.select_dtype resolves it)
DTYPES = ("auto", "float32", "bfloat16")


@dataclass
class ModelConfig:
    """The policy.

    Fields:
        name: a from-scratch Llama with a character tokenizer for the built-in task, by size
            (``nano``, ``tiny``, ``small``, ``medium``: lensrl.policy.TINY_PRESETS),
            ``smollm2`` (SmolLM2-135M-Instruct from the packaged weights) or the path of a
            local Hugging Face model folder.
        init_from: a model folder (e.g. from ``lensrl sft``) to start from instead.
        dtype: the dtype forward passes compute in: ``auto`` (bf16 where the hardware runs it
            fast: a GPU, or a CPU with AVX-512 BF16/AMX; else float32), ``float32`` or
            ``bfloat16``. The weights, gradients and AdamW state are float32 in every case
            (bf16 runs under autocast; see docs/training.md).
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        lora: ``None`` (train every weight) or LoRA adapters through peft, trained alone over
            the frozen model: ``{r, alpha, target_modules, dropout}`` (:data:`LORA_DEFAULTS`
            fills what is left out; lensrl.policy.add_lora).
    """

    name: str = "tiny"
    init_from: str | None = None
    dtype: str = "auto"
    device: str = "auto"
    lora: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        check(self.dtype in DTYPES, "model.dtype", self.dtype,
               "auto, float32 or bfloat16")
        check(self.device in ("auto", "cpu", "cuda"), "model.device", self.device,
               "auto, cpu or cuda")
        if self.lora is not None:
            self.lora = lora_settings(self.lora)


# model.lora: what a key left out means (r = 16, alpha = 32: peft's and TRL's usual pair;
# the attention and MLP projections of a Llama-shaped model).
LORA_DEFAULTS: dict[str, Any] = {
    "r": 16,
    "alpha": 32,
    "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                       "down_proj"],
    "dropout": 0.0,
}


def lora_settings(value: Any) -> dict[str, Any]:
    """``model.lora`` checked and completed with :data:`LORA_DEFAULTS`; a JSON string (from
    ``--set model.lora={...}``) is read first."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ConfigError(f"model.lora = {value!r} is invalid: must be a mapping "
                              "such as {\"r\": 16, \"alpha\": 32}") from None
    check(isinstance(value, dict), "model.lora", value,
          "a mapping of r, alpha, target_modules, dropout (or null for no LoRA)")
    bad = sorted(set(value) - set(LORA_DEFAULTS))
    if bad:
        raise ConfigError(f"unknown key(s) {', '.join(f'model.lora.{k}' for k in bad)}; "
                          f"model.lora has {', '.join(sorted(LORA_DEFAULTS))}")
    out = {**LORA_DEFAULTS, **value}
    r, alpha, targets, dropout = out["r"], out["alpha"], out["target_modules"], out["dropout"]
    check(isinstance(r, int) and not isinstance(r, bool) and r >= 1, "model.lora.r", r,
          "an integer >= 1")
    check(isinstance(alpha, int | float) and not isinstance(alpha, bool) and alpha > 0,
          "model.lora.alpha", alpha, "a number > 0")
    check(isinstance(targets, list) and bool(targets)
          and all(isinstance(t, str) and t for t in targets), "model.lora.target_modules",
          targets, "a non-empty list of module names, e.g. [q_proj, v_proj]")
    check(isinstance(dropout, int | float) and not isinstance(dropout, bool)
          and 0 <= dropout < 1, "model.lora.dropout", dropout, "in [0, 1)")
    out["target_modules"] = list(targets)
    return out


@dataclass
class BatchConfig:
    """How much work a step does and how it is cut, each setting named by its unit.

    Fields:
        prompts_per_step: prompts rolled out per step (paper: 128), each with
            ``rollout.samples_per_prompt`` samples.
        prompts_per_update: prompts per optimizer update (paper: 32, so 4 updates a step).
        rows_per_micro_batch: sequences per forward/backward of an update (gradient
            accumulation); memory only, the gradient is the same.
        rows_per_logprob_pass: sequences per no-grad forward when π_old is recomputed
            (temperature or top-p other than 1); memory only.
    """

    prompts_per_step: int = 128
    prompts_per_update: int = 32
    rows_per_micro_batch: int = 64
    rows_per_logprob_pass: int = 256

    def __post_init__(self) -> None:
        check(self.prompts_per_update >= 1, "batch.prompts_per_update",
               self.prompts_per_update, ">= 1")
        check(self.prompts_per_step >= self.prompts_per_update
               and self.prompts_per_step % self.prompts_per_update == 0,
               "batch.prompts_per_step", self.prompts_per_step,
               f"a multiple of batch.prompts_per_update ({self.prompts_per_update})")
        check(self.rows_per_micro_batch >= 1, "batch.rows_per_micro_batch",
               self.rows_per_micro_batch, ">= 1")
        check(self.rows_per_logprob_pass >= 1, "batch.rows_per_logprob_pass",
               self.rows_per_logprob_pass, ">= 1")


@dataclass
class TaskConfig:
    """Training and held-out problems.

    Fields:
        dataset: ``builtin`` (the offline leveled task) or a MATH-style file/folder.
        eval_dataset: held-out problems for a file dataset (``builtin`` uses its test split).
        levels: built-in levels to train and evaluate on.
        train_problems: size of the built-in training pool.
        eval_problems: size of the held-out set used by periodic evaluation.
        seed: seed of the built-in task's generator.
        template: prompt template with ``{problem}``; ``None`` = the tokenizer's chat
            template, else the plain one (lensrl.data.format_prompt).
        source: ``dataset`` (the problems of ``dataset``) or ``reasoning_gym`` (procedural
            problems from reasoning-gym, ``pip install 'lensrl[gym]'``; lensrl.data.gym).
        datasets: with ``source: reasoning_gym``, reasoning-gym dataset names and their
            weights in the mix (``{chain_sum: 1, basic_arithmetic: 1}``), at ``levels``.
    """

    dataset: str = "builtin"
    eval_dataset: str | None = None
    levels: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5])
    train_problems: int = 5000
    eval_problems: int = 200
    seed: int = 0
    template: str | None = None
    source: str = "dataset"
    datasets: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check(self.source in ("dataset", "reasoning_gym"), "task.source", self.source,
              "dataset or reasoning_gym")
        check(self.source != "reasoning_gym" or (bool(self.datasets) and all(
            isinstance(w, (int, float)) and w > 0 for w in self.datasets.values())),
              "task.datasets", self.datasets, "a non-empty mapping of reasoning-gym names to "
              "weights > 0 with task.source = reasoning_gym")
        check(bool(self.levels) and all(1 <= lv <= 5 for lv in self.levels), "task.levels",
               self.levels, "a non-empty list of levels 1-5")
        check(self.train_problems >= 1, "task.train_problems", self.train_problems, ">= 1")
        check(self.eval_problems >= 0, "task.eval_problems", self.eval_problems, ">= 0")


@dataclass
class RolloutConfig:
    """Sampling (paper: 16 samples, temperature 1.0, top-p 1.0, 4096 tokens).

    With temperature 1 and top-p 1 the sampler's log-probs are the policy's and are reused as
    π_old; otherwise π_old is recomputed with a forward pass (see docs/algorithm.md).
    """

    samples_per_prompt: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 4096

    def __post_init__(self) -> None:
        check(self.samples_per_prompt >= 2, "rollout.samples_per_prompt",
               self.samples_per_prompt, ">= 2 (a group needs two samples)")
        check(self.temperature > 0, "rollout.temperature", self.temperature, "> 0")
        check(0 < self.top_p <= 1, "rollout.top_p", self.top_p, "in (0, 1]")
        check(self.max_new_tokens >= 1, "rollout.max_new_tokens", self.max_new_tokens, ">= 1")


@dataclass
class AlgoConfig:
    """Advantages and loss (paper: LENS, α = 0.25, clip 0.2, no KL).

    Fields:
        estimator: one of lensrl.core.ESTIMATORS.
        alpha, d_floor, std_ddof, eps: passed to lensrl.core.compute_advantages.
        clip_low, clip_high, aggregation, kl_coef: passed to lensrl.core.policy_loss.
        dynamic_sampling: DAPO-style: drop zero-variance groups and sample more prompts.
        max_resample_rounds: extra rollouts allowed per step to fill the batch.
        skip_zero_advantage: with ``kl_coef = 0``, rows whose advantage is exactly 0 (every
            sample of an all-right or all-wrong GRPO group, LENS's all-right groups) add exactly
            nothing to the loss, so the update skips their forward and backward; each trained
            micro-batch keeps its share of the normaliser of the whole update, so the gradient
            and the weights are the same as with ``False`` up to float summation order (an
            update with no trained row still steps AdamW, with zero gradients). What changes
            is the logged ``clip/*``, ``policy/approx_kl`` and ``policy/ratio_mean``: they are
            averaged over the trained rows only (``null`` for a step that trained none).
            ``False`` trains every row (ignored when ``kl_coef > 0``: the KL term has a
            gradient on every row).
        share_prompt_prefix: run each prompt of an update through the model once, not once
            per sample, and let its samples attend to its keys and values (Llama models;
            others run every row in full). The same gradient up to float summation order,
            for a fraction of the prompt's cost (lensrl.train.batching.SharedPrefix).
    """

    estimator: str = "lens"
    alpha: float = LENS_ALPHA
    d_floor: float = LENS_D_FLOOR
    std_ddof: int = 1
    eps: float = 1e-6
    clip_low: float = 0.2
    clip_high: float = 0.2
    aggregation: str = "seq_mean_token_mean"
    kl_coef: float = 0.0
    dynamic_sampling: bool = False
    max_resample_rounds: int = 3
    skip_zero_advantage: bool = True
    share_prompt_prefix: bool = True

    def __post_init__(self) -> None:
        check(self.estimator in ESTIMATORS, "algo.estimator", self.estimator,
               "one of " + ", ".join(ESTIMATORS))
        check(self.aggregation in AGGREGATIONS, "algo.aggregation", self.aggregation,
               "one of " + ", ".join(AGGREGATIONS))
        check(self.alpha >= 0, "algo.alpha", self.alpha, ">= 0")
        check(self.d_floor > 1, "algo.d_floor", self.d_floor, "> 1")
        check(self.std_ddof in (0, 1), "algo.std_ddof", self.std_ddof, "0 or 1")
        check(self.eps >= 0, "algo.eps", self.eps, ">= 0")
        check(0 <= self.clip_low < 1, "algo.clip_low", self.clip_low, "in [0, 1)")
        check(self.clip_high >= 0, "algo.clip_high", self.clip_high, ">= 0")
        check(self.kl_coef >= 0, "algo.kl_coef", self.kl_coef, ">= 0")
        check(self.max_resample_rounds >= 0, "algo.max_resample_rounds",
               self.max_resample_rounds, ">= 0")


@dataclass
class OptimConfig:
    """AdamW with linear warm-up to a constant rate (paper: 1e-6 for Qwen2.5-3B)."""

    lr: float = 1e-6
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup_updates: int = 0
    grad_clip: float = 1.0
    max_bad_updates: int = 3  # non-finite updates in a row that stop the run

    def __post_init__(self) -> None:
        check(self.lr > 0, "optim.lr", self.lr, "> 0")
        check(self.weight_decay >= 0, "optim.weight_decay", self.weight_decay, ">= 0")
        check(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "optim.betas",
               self.betas, "two numbers in [0, 1)")
        check(self.warmup_updates >= 0, "optim.warmup_updates", self.warmup_updates, ">= 0")
        check(self.grad_clip > 0, "optim.grad_clip", self.grad_clip, "> 0")
        check(self.max_bad_updates >= 1, "optim.max_bad_updates", self.max_bad_updates, ">= 1")


@dataclass
class RunConfig:
    """Bookkeeping.

    Fields:
        name: run name; the folder is ``runs/<name>`` unless ``run_dir`` is set.
        steps: training steps (one step = one rollout batch and its updates).
        checkpoint_every / eval_every: in steps; 0 disables (a final checkpoint is kept).
        eval_samples: samples per held-out problem for periodic evaluation.
        keep_checkpoints: newest checkpoints kept on disk.
        log_samples: prompt/completion rows written to samples.jsonl per step.
        tensorboard: also write TensorBoard events.
        progress: show a progress bar.
    """

    name: str = "run"
    run_dir: str | None = None
    seed: int = 0
    steps: int = 100
    checkpoint_every: int = 0
    eval_every: int = 0
    eval_samples: int = 16
    keep_checkpoints: int = 2
    log_samples: int = 4
    tensorboard: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        check(bool(self.name) and "/" not in self.name, "run.name", self.name,
               "a non-empty name without '/'")
        check(self.steps >= 0, "run.steps", self.steps, ">= 0")
        for f in ("checkpoint_every", "eval_every", "log_samples"):
            check(getattr(self, f) >= 0, f"run.{f}", getattr(self, f), ">= 0")
        check(self.eval_samples >= 1, "run.eval_samples", self.eval_samples, ">= 1")
        check(self.keep_checkpoints >= 1, "run.keep_checkpoints", self.keep_checkpoints, ">= 1")

    @property
    def path(self) -> Path:
        return Path(self.run_dir) if self.run_dir else Path("runs") / self.name


@dataclass
class VerifyConfig:
    """The answer checker (``lensrl.verify``; when each setting is right: docs/verifier.md §6).

    Fields:
        strict_train: training rewards read only the last ``\\boxed{}`` (no fallbacks), so the
            prompt's format is the only place an answer counts; LENS uses no format reward.
        strict_eval: evaluation (periodic and ``lensrl eval``) reads only the last ``\\boxed{}``
            too; the default (False) also accepts "The answer is 42", ``#### 42`` and bare answers.
        timeout: wall-clock seconds allowed to judge one (gold, prediction) pair; past it the
            worker is killed and the pair is wrong ("timeout"), or cannot be judged if the gold hung.
    """

    strict_train: bool = True
    strict_eval: bool = False
    timeout: float = 5.0

    def __post_init__(self) -> None:
        for f in ("strict_train", "strict_eval"):
            check(isinstance(getattr(self, f), bool), f"verify.{f}", getattr(self, f),
                   "true or false")
        check(isinstance(self.timeout, int | float) and not isinstance(self.timeout, bool)
               and 0 < self.timeout <= 600, "verify.timeout", self.timeout,
               "a number of seconds in (0, 600]")


SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "task": TaskConfig,
    "rollout": RolloutConfig,
    "batch": BatchConfig,
    "algo": AlgoConfig,
    "optim": OptimConfig,
    "run": RunConfig,
    "verify": VerifyConfig,
}


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> TrainConfig:
        """Build from nested dicts; unknown sections or keys are errors naming them. Keys of
        0.1 are read under their new names, with a warning (lensrl.train.migrate)."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a mapping of sections, got {type(data).__name__}")
        data = migrate(data, source)
        unknown = set(data) - set(SECTIONS)
        if unknown:
            raise ConfigError(
                f"{source}: unknown section(s) {sorted(unknown)}; known: {sorted(SECTIONS)}"
            )
        parts = {}
        for name, section_cls in SECTIONS.items():
            values = data.get(name) or {}
            if not isinstance(values, dict):
                raise ConfigError(f"{source}: section {name!r} must be a mapping")
            known = {f.name for f in fields(section_cls)}
            bad = set(values) - known
            if bad:
                raise ConfigError(
                    f"{source}: unknown key(s) {', '.join(f'{name}.{k}' for k in sorted(bad))}; "
                    f"{name} has {', '.join(sorted(known))}"
                )
            values = {k: convert(v, section_cls, k, f"{source}: {name}.{k}")
                      for k, v in values.items()}
            try:
                parts[name] = section_cls(**values)
            except TypeError as exc:
                raise ConfigError(f"{source}: section {name!r}: {exc}") from exc
        return cls(**parts)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``data`` with ``section.key=value`` strings applied (each value converted to its field's
    type, :func:`convert`), as a new dict with 0.1's key names already renamed (:func:`migrate`).
    An old name and its new name both given, with different values, is an error."""
    data = migrate(data)  # old keys first, so that an override of the new name wins
    given: dict[tuple[str, str], tuple[str, Any]] = {}  # (section, key) -> (as written, value)
    for item in overrides:
        key, sep, raw = item.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot:
            raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. algo.alpha=0.5")
        written = key
        renamed = renamed_override(section, name)
        if renamed is not None:
            section, name = renamed
            key = f"{section}.{name}"
        section_cls = SECTIONS.get(section)
        if section_cls is None or name not in {f.name for f in fields(section_cls)}:
            raise ConfigError(f"--set {item!r}: unknown key {key!r}")
        value = convert(raw, section_cls, name, f"--set {key}")
        before = given.get((section, name))
        if before is not None and before[0] != written and before[1] != value:
            spelled = {written: value, before[0]: before[1]}
            old = next(w for w in spelled if w != key)
            raise ConfigError(f"--set {old}={spelled[old]!r} (the old name of {key}) contradicts "
                              f"--set {key}={spelled.get(key)!r}; keep only {key}")
        given[(section, name)] = (written, value)
        section_values = data.get(section)
        if not isinstance(section_values, dict):
            section_values = data[section] = {}
        section_values[name] = value
    return data
