"""Reading what lensrl 0.1 wrote: config keys renamed in 0.2, in a YAML file, a ``--set`` or
the ``config.json`` of an older run folder (data outlives code). The config loaders call
:func:`migrate` and :func:`renamed_override`; nothing else knows the old names.
"""

from __future__ import annotations

import warnings
from typing import Any

from lensrl.train.coerce import ConfigError


class RenamedKeyWarning(DeprecationWarning):
    """A key of 0.1 read under its 0.2 name (:data:`RENAMED`). ``lensrl`` shows each one once,
    on one line; a library caller sees it as a DeprecationWarning."""


# Keys renamed in 0.2, when the batch settings moved into one section, each named by its unit.
RENAMED: dict[tuple[str, str], tuple[str, str]] = {
    ("algo", "prompts_per_rollout"): ("batch", "prompts_per_step"),
    ("algo", "prompts_per_update"): ("batch", "prompts_per_update"),
    ("algo", "micro_batch"): ("batch", "rows_per_micro_batch"),
    ("model", "logprob_micro_batch"): ("batch", "rows_per_logprob_pass"),
}


def migrate(data: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """A copy of ``data`` with 0.1's keys under their 0.2 names: :data:`RENAMED`, and
    ``model: {name: tiny, size: S}`` as ``model: {name: S}`` (a non-tiny model ignored
    ``size``). Saved ``config.json`` files of older runs load this way too. Warns once per key;
    an old key beside its new one with another value is an error."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for (sec, key), (new_sec, new_key) in RENAMED.items():
        section = out.get(sec)
        if not isinstance(section, dict) or key not in section:
            continue
        value = section.pop(key)
        target = out.setdefault(new_sec, {})
        if isinstance(target, dict):
            if new_key in target and target[new_key] != value:
                raise ConfigError(f"{source}: {sec}.{key} (the old name of {new_sec}.{new_key}) "
                                  f"= {value!r} contradicts {new_sec}.{new_key} = "
                                  f"{target[new_key]!r}; keep only {new_sec}.{new_key}")
            target.setdefault(new_key, value)
        warnings.warn(f"{source}: {sec}.{key} is now {new_sec}.{new_key}", RenamedKeyWarning,
                      stacklevel=3)
    model = out.get("model")
    if isinstance(model, dict) and "size" in model:
        size = model.pop("size")
        if model.get("name", "tiny") == "tiny":
            model["name"] = size
        warnings.warn(f"{source}: model.size is gone; name the tiny model by its size "
                      f"(model.name: {size})", RenamedKeyWarning, stacklevel=3)
    return out


def renamed_override(section: str, key: str) -> tuple[str, str] | None:
    """The 0.2 ``(section, key)`` of a ``--set`` written with 0.1's name, with a warning; None
    for a current name."""
    if (section, key) not in RENAMED and (section, key) != ("model", "size"):
        return None
    new = RENAMED.get((section, key), ("model", "name"))
    warnings.warn(f"--set {section}.{key} is now {new[0]}.{new[1]}", RenamedKeyWarning,
                  stacklevel=3)
    return new
