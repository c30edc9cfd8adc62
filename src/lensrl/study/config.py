"""The study's typed configuration (``configs/study.yaml``), validated on load.

Errors name the field as ``section.field`` (``warmup.steps``, ``arms.lens.alpha``,
``stats.primary.endpoints``), like :mod:`lensrl.train.config`. Each arm's training config is the base
preset, then the shared ``train`` sections, then the arm's estimator, α and ``set`` overrides,
then what the study owns (the warm-up checkpoint, the seed, the run folder): see
:func:`arm_train_config`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from lensrl.core import ESTIMATORS
from lensrl.eval.passk import ALL, HARD
from lensrl.train.config import ConfigError, TrainConfig, apply_overrides, check
from lensrl.train.presets import load_config_file, load_preset

BUCKETS = (ALL, "level_1", "level_2", "level_3", "level_4", "level_5", HARD)


@dataclass
class WarmupSpec:
    """The supervised warm-up that every arm and seed starts from (lensrl.train.sft.SFTConfig).

    Fields: ``size`` tiny-model preset; ``steps`` supervised steps (no time limit, so the
    checkpoint is the same on every machine); ``batch_size``; ``lr``; ``seed``.
    """

    size: str = "tiny"
    steps: int = 500
    batch_size: int = 128
    lr: float = 3e-3
    seed: int = 0

    def __post_init__(self) -> None:
        from lensrl.policy import TINY_PRESETS

        check(self.size in TINY_PRESETS, "warmup.size", self.size,
               f"one of {', '.join(TINY_PRESETS)}")
        check(self.steps >= 1, "warmup.steps", self.steps, ">= 1")
        check(self.batch_size >= 1, "warmup.batch_size", self.batch_size, ">= 1")
        check(self.lr > 0, "warmup.lr", self.lr, "> 0")


@dataclass
class ArmSpec:
    """One arm: an estimator with its overrides, trained for ``seeds`` paired seeds 0..seeds-1.

    Fields: ``name``; ``estimator`` (lensrl.core.ESTIMATORS); ``alpha`` (``None`` = the base
    config's, a number ≥ 0, or ``"G"`` for ``rollout.samples_per_prompt``); ``seeds``; ``set``
    extra ``section.key=value`` overrides (as ``lensrl train --set``).
    """

    name: str
    estimator: str
    alpha: float | str | None = None
    seeds: int = 8
    set: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        where = f"arms.{self.name}"
        check(self.estimator in ESTIMATORS, f"{where}.estimator", self.estimator,
               "one of " + ", ".join(ESTIMATORS))
        check(self.alpha is None or self.alpha == "G"
               or (isinstance(self.alpha, int | float) and not isinstance(self.alpha, bool)
                   and self.alpha >= 0), f"{where}.alpha", self.alpha, "a number >= 0 or 'G'")
        check(isinstance(self.seeds, int) and self.seeds >= 1, f"{where}.seeds", self.seeds,
               ">= 1")
        check(isinstance(self.set, list) and all(isinstance(s, str) for s in self.set),
               f"{where}.set", self.set, "a list of 'section.key=value' strings")


@dataclass
class PilotSpec:
    """Runs done first: seeds ``0..seeds-1`` of ``arms``, interleaved by seed."""

    arms: list[str] = field(default_factory=lambda: ["grpo", "lens"])
    seeds: int = 5

    def __post_init__(self) -> None:
        check(self.seeds >= 0, "pilot.seeds", self.seeds, ">= 0")


@dataclass
class EvalSpec:
    """Final evaluation of every run: ``samples`` per problem on the first ``problems`` of the
    built-in test split. Run seed s is evaluated with sampling seed ``seed_base + seed_stride·s``
    in every arm (common random numbers, which the pairing can use); ``lensrl eval`` hashes
    (seed, step, chunk) into each chunk's stream (lensrl.eval.evaluate.stream_seed), so no two
    seeds share a stream whatever the spacing. The two numbers are kept so that the seeds of
    earlier runs stay the same."""

    problems: int = 500
    samples: int = 16
    batch_prompts: int = 32
    seed_base: int = 1_000_000
    seed_stride: int = 10_000

    def __post_init__(self) -> None:
        check(self.problems >= 1, "eval.problems", self.problems, ">= 1")
        check(self.samples >= 1, "eval.samples", self.samples, ">= 1")
        check(self.batch_prompts >= 1, "eval.batch_prompts", self.batch_prompts, ">= 1")


@dataclass
class StatsSpec:
    """The analysis, declared before running (docs/study.md §3).

    Fields:
        baseline: the arm every other arm is compared with (paired by seed).
        primary_arm: the arm of the primary comparison (``<primary_arm>_vs_<baseline>``).
        endpoints: primary endpoints ``bucket:k``; Holm-adjusted together. Every other cell of
            every comparison gets a Benjamini–Hochberg q-value.
        tost_margin: equivalence margin (pass@k as a fraction) for "no difference" claims.
        target_diff, power: the effect the seed count is planned to detect, and the power.
        confidence: of every CI.
        alpha: the significance level of every test (Holm, BH, TOST, MDE, seeds needed).
        alpha_sweep: arms of the α dose-response, in order (α read from each arm).
        comparisons: extra ``[arm, baseline]`` pairs (their estimators must differ).
        resamples, permutations: for lensrl.compare (the bootstrap and random relabellings).
    """

    baseline: str = "grpo"
    primary_arm: str = "lens"
    endpoints: list[str] = field(default_factory=lambda: ["all:8", "levels_4-5:16"])
    tost_margin: float = 0.02
    target_diff: float = 0.02
    power: float = 0.8
    confidence: float = 0.95
    alpha: float = 0.05
    alpha_sweep: list[str] = field(default_factory=list)
    comparisons: list[list[str]] = field(default_factory=list)
    resamples: int = 2000
    permutations: int = 10000

    def __post_init__(self) -> None:
        from lensrl.eval.passk import parse_endpoints

        for i, e in enumerate(self.endpoints):
            try:
                parsed = parse_endpoints(str(e), flag=f"stats.endpoints[{i}]")
            except ValueError:
                parsed = []
            check(len(parsed) == 1 and parsed[0][0] in BUCKETS, f"stats.endpoints[{i}]", e,
                   f"'bucket:k' with a bucket in {', '.join(BUCKETS)} and k >= 1")
        check(self.tost_margin > 0, "stats.tost_margin", self.tost_margin, "> 0")
        check(self.target_diff > 0, "stats.target_diff", self.target_diff, "> 0")
        check(0 < self.power < 1, "stats.power", self.power, "in (0, 1)")
        check(0 < self.confidence < 1, "stats.confidence", self.confidence, "in (0, 1)")
        check(0 < self.alpha < 1, "stats.alpha", self.alpha, "in (0, 1)")
        for i, pair in enumerate(self.comparisons):
            check(isinstance(pair, list) and len(pair) == 2, f"stats.comparisons[{i}]", pair,
                   "a pair [arm, baseline]")
        check(self.resamples >= 1, "stats.resamples", self.resamples, ">= 1")
        check(self.permutations >= 1, "stats.permutations", self.permutations, ">= 1")

    def parsed_endpoints(self) -> list[tuple[str, int]]:
        from lensrl.eval.passk import parse_endpoints

        return parse_endpoints(",".join(self.endpoints), flag="stats.endpoints")


@dataclass
class StudyConfig:
    """The whole study. ``preset`` + ``train`` is every arm's shared TrainConfig; ``out`` holds
    the run folders (large, git-ignored), ``results`` the committed summary and report."""

    arms: dict[str, ArmSpec]
    preset: str = "demo"
    train: dict[str, Any] = field(default_factory=dict)
    out: str = "runs/study"
    results: str = "results/study"
    warmup: WarmupSpec = field(default_factory=WarmupSpec)
    pilot: PilotSpec = field(default_factory=PilotSpec)
    eval: EvalSpec = field(default_factory=EvalSpec)
    stats: StatsSpec = field(default_factory=StatsSpec)
    source: str = "study config"

    @property
    def out_dir(self) -> Path:
        return Path(self.out)

    @property
    def warmup_dir(self) -> Path:
        return self.out_dir / "warmup"

    def run_dir(self, arm: str, seed: int) -> Path:
        return self.out_dir / arm / f"seed{seed}"

    @property
    def rl_steps(self) -> int:
        """RL steps of every run (``train.run.steps`` over the preset's)."""
        return int(self.base_train().get("run", {}).get("steps", 100))

    def base_train(self) -> dict[str, Any]:
        """The preset with the shared ``train`` sections merged over it."""
        data = copy.deepcopy(load_preset(self.preset))
        for section, values in self.train.items():
            data.setdefault(section, {}).update(copy.deepcopy(values))
        return data


_SECTIONS: dict[str, type] = {"warmup": WarmupSpec, "pilot": PilotSpec, "eval": EvalSpec,
                              "stats": StatsSpec}
_TOP = {"preset", "train", "out", "results", "arms", *_SECTIONS}


def _section(cls: type, where: str, values: Any, source: str, **extra: Any) -> Any:
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: {where} must be a mapping, got {type(values).__name__}")
    known = {f.name for f in fields(cls)} - {"name"}
    bad = sorted(set(values) - known)
    if bad:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(f'{where}.{k}' for k in bad)}; "
                          f"{where} has {', '.join(sorted(known))}")
    try:
        return cls(**values, **extra)
    except TypeError as exc:
        raise ConfigError(f"{source}: {where}: {exc}") from exc


def study_from_dict(data: dict[str, Any], source: str = "study config") -> StudyConfig:
    """Build and cross-check a StudyConfig; every error names the field."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    unknown = sorted(set(data) - _TOP)
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)}; known: "
                          f"{', '.join(sorted(_TOP))}")
    arms_raw = data.get("arms")
    if not isinstance(arms_raw, dict) or not arms_raw:
        raise ConfigError(f"{source}: arms must be a non-empty mapping of name -> arm")
    arms = {}
    for name, spec in arms_raw.items():
        check(isinstance(name, str) and name.isidentifier(), "arms", name,
               "names made of letters, digits and '_'")
        arms[name] = _section(ArmSpec, f"arms.{name}", spec, source, name=name)
    parts = {name: _section(cls, name, data.get(name), source) for name, cls in _SECTIONS.items()}
    train = data.get("train") or {}
    check(isinstance(train, dict), "train", train, "a mapping of TrainConfig sections")
    cfg = StudyConfig(arms=arms, preset=str(data.get("preset", "demo")), train=train,
                      out=str(data.get("out", "runs/study")),
                      results=str(data.get("results", "results/study")), source=source, **parts)
    _cross_check(cfg)
    return cfg


def _cross_check(cfg: StudyConfig) -> None:
    names = set(cfg.arms)
    st = cfg.stats
    check(st.baseline in names, "stats.baseline", st.baseline, f"an arm ({', '.join(names)})")
    check(st.primary_arm in names and st.primary_arm != st.baseline, "stats.primary_arm",
           st.primary_arm, "an arm other than stats.baseline")
    for arm in cfg.pilot.arms:
        check(arm in names, "pilot.arms", arm, f"an arm ({', '.join(names)})")
    for arm in st.alpha_sweep:
        check(arm in names and cfg.arms[arm].estimator in ("lens", "lens_mixed_only"),
               "stats.alpha_sweep", arm, "an arm whose estimator is lens or lens_mixed_only")
    for i, (a, b) in enumerate(st.comparisons):
        check(a in names and b in names and cfg.arms[a].estimator != cfg.arms[b].estimator,
               f"stats.comparisons[{i}]", [a, b], "two arms with different estimators")
    for i, (_, k) in enumerate(st.parsed_endpoints()):
        check(k <= cfg.eval.samples, f"stats.endpoints[{i}]", st.endpoints[i],
               f"k <= eval.samples ({cfg.eval.samples})")
    for name in cfg.arms:  # every arm's TrainConfig must build
        arm_train_config(cfg, name, 0)


def resolve_alpha(arm: ArmSpec, base: dict[str, Any]) -> float:
    """The arm's α as a number (``"G"`` → samples per prompt; ``lens_mixed_only`` → 0)."""
    if arm.estimator == "lens_mixed_only":
        return 0.0
    if arm.alpha == "G":
        return float(base.get("rollout", {}).get("samples_per_prompt", 16))
    if arm.alpha is None:
        return float(base.get("algo", {}).get("alpha", 0.25))
    return float(arm.alpha)


def arm_train_config(cfg: StudyConfig, arm_name: str, seed: int) -> TrainConfig:
    """The TrainConfig of one (arm, seed): base, then the arm, then what the study owns.

    The study owns: the warm-up checkpoint (``model.init_from``), ``run.seed`` (which orders the
    data, so a seed sees the same problems in every arm), the run folder, and no evaluation
    during training (the study evaluates the final checkpoint itself).
    """
    arm = cfg.arms[arm_name]
    base = cfg.base_train()
    where = f"{cfg.source}: arms.{arm_name}"
    overrides = [f"algo.estimator={arm.estimator}",
                 f"algo.alpha={resolve_alpha(arm, base)}", *arm.set,
                 f"model.init_from={cfg.warmup_dir}", f"run.seed={seed}",
                 f"run.name={arm_name}-seed{seed}", f"run.run_dir={cfg.run_dir(arm_name, seed)}",
                 "run.eval_every=0", "run.progress=false"]
    try:
        data = apply_overrides(base, overrides)
        return TrainConfig.from_dict(data, source=where)
    except ConfigError as exc:
        msg = str(exc)
        raise ConfigError(msg if msg.startswith(where) else f"{where}: {msg}") from None


def load_study(path: str | Path, overrides: list[str] | None = None) -> StudyConfig:
    """Read ``path`` (YAML) and apply ``section.field=value`` overrides (``--set``)."""
    import yaml

    data = load_config_file(path)
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        parts = key.split(".")
        ok = sep and ((parts[0] in _SECTIONS and len(parts) == 2)
                      or (parts[0] == "train" and len(parts) == 3)
                      or (parts[0] in ("out", "results", "preset") and len(parts) == 1))
        if not ok:
            raise ConfigError(f"--set {item!r}: expected out=, results=, preset=, "
                              f"train.<section>.<key>= or one of "
                              f"{', '.join(sorted(_SECTIONS))}.<field>=value")
        target = data
        for part in parts[:-1]:
            if not isinstance(target.get(part), dict):
                target[part] = {}
            target = target[part]
        target[parts[-1]] = yaml.safe_load(raw)
    return study_from_dict(data, source=str(path))
