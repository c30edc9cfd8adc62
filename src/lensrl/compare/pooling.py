"""Which runs may be pooled as seeds of one arm, and which arms may be compared.

Runs pooled as seeds of one arm must differ only in their seed and identity (``run.seed``,
``run.name``, ``run.run_dir``): anything else (another learning rate, evaluation step, sampling
temperature) would be counted as seed-to-seed noise, or worse, as a method effect. Arms may
differ only in the key that defines them (``algo.estimator`` and the other ``algo.*`` options by
default, or the ``--group-by`` key). :func:`pooling_problems` lists every violation; ``lensrl
compare`` refuses them unless ``--allow-mixed``, and then prints them as warnings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lensrl.runs import RunInfo

# Keys that name a run rather than describe how it was trained.
IDENTITY_KEYS = ("run.seed", "run.name", "run.run_dir")
# Settings that only change how training is observed, not what it learns.
OBSERVATION_KEYS = (
    "run.progress",
    "run.tensorboard",
    "run.log_samples",
    "run.keep_checkpoints",
    "run.checkpoint_every",
)
DEFAULT_GROUP_KEY = "algo.estimator"


def flatten(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``; lists stay values."""
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def config_value(cfg: Mapping[str, Any], key: str) -> Any:
    """The value of a dotted key (``algo.alpha``).

    Raises:
        KeyError: the key is not in the config (the message names it).
    """
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(key)
        node = node[part]
    return node


def group_label(info: RunInfo, group_by: str | None) -> str:
    """The arm a run belongs to: its estimator, or ``KEY=value`` under ``--group-by KEY``."""
    if group_by is None or group_by == DEFAULT_GROUP_KEY:
        return info.method
    try:
        value = config_value(info.config, group_by)
    except KeyError:
        raise ValueError(
            f"--group-by {group_by}: {info.path / 'config.json'} has no key {group_by!r}"
        ) from None
    return f"{group_by}={value}"


def _differing(configs: Sequence[dict[str, Any]], skip: Iterable[str]) -> dict[str, list[Any]]:
    """``{key: values per run}`` for keys whose value is not the same in every config."""
    skipped = tuple(skip)
    keys = sorted({k for c in configs for k in c})
    out: dict[str, list[Any]] = {}
    for key in keys:
        if any(key == s or key.startswith(s + ".") for s in skipped):
            continue
        values = [c.get(key, "<absent>") for c in configs]
        if any(v != values[0] for v in values[1:]):
            out[key] = values
    return out


def _sampling(ev: Mapping[str, Any]) -> dict[str, Any]:
    # The evaluation seed is a stream, not a setting: it is expected to differ between runs.
    return {k: v for k, v in dict(ev.get("sampling") or {}).items() if k != "seed"}


def pooling_problems(
    arms: Mapping[str, Sequence[tuple[RunInfo, Mapping[str, Any]]]],
    *,
    group_by: str | None = None,
    ignore: Sequence[str] = (),
) -> list[str]:
    """Every reason these runs should not be pooled or compared as given, as readable lines.

    ``arms``: ``{arm: [(run info, its eval JSON), ...]}``. Checked: within an arm, config keys
    other than :data:`IDENTITY_KEYS` and :data:`OBSERVATION_KEYS`, the evaluated step and the
    eval sampling (minus its seed); across arms, the same except the grouping key (with the
    default grouping, every ``algo.*`` key, since each estimator has its own options).
    ``ignore``: more config keys (or sections) the caller knows to be harmless, e.g.
    ``model.init_from`` when each seed has its own warm-up.
    """
    problems: list[str] = []
    skip_within = (*IDENTITY_KEYS, *OBSERVATION_KEYS, *ignore)
    for arm, items in arms.items():
        names = [info.name for info, _ in items]
        diff = _differing([flatten(info.config) for info, _ in items], skip_within)
        for key, values in diff.items():
            problems.append(f"arm {arm!r}: runs {names} differ in config key {key}: {values}")
        steps = [int(ev["step"]) for _, ev in items]
        if len(set(steps)) > 1:
            problems.append(f"arm {arm!r}: runs {names} were evaluated at different steps {steps}")
        samplings = [_sampling(ev) for _, ev in items]
        if any(s != samplings[0] for s in samplings[1:]):
            problems.append(f"arm {arm!r}: runs {names} were evaluated with sampling {samplings}")
    if len(arms) < 2:
        return problems
    firsts = {arm: items[0] for arm, items in arms.items() if items}
    group_key = group_by or DEFAULT_GROUP_KEY
    skip_across = (*skip_within, "algo" if group_key == DEFAULT_GROUP_KEY else group_key)
    diff = _differing([flatten(info.config) for info, _ in firsts.values()], skip_across)
    for key, values in diff.items():
        problems.append(
            f"arms {list(firsts)} differ in config key {key} besides {group_key}: {values}"
        )
    arm_steps = {arm: int(ev["step"]) for arm, (_, ev) in firsts.items()}
    if len(set(arm_steps.values())) > 1:
        problems.append(f"arms were evaluated at different steps: {arm_steps}")
    arm_samplings = {arm: _sampling(ev) for arm, (_, ev) in firsts.items()}
    first = next(iter(arm_samplings.values()))
    if any(s != first for s in arm_samplings.values()):
        problems.append(f"arms were evaluated with different sampling: {arm_samplings}")
    return problems
