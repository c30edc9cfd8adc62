"""Built-in training presets (YAML files beside this module) and config-file loading."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from lensrl.train.config import ConfigError


def preset_names() -> list[str]:
    return sorted(
        p.name.removesuffix(".yaml")
        for p in resources.files(__name__).iterdir()
        if p.name.endswith(".yaml")
    )


def _parse(text: str, source: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{source}:{where} invalid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of sections at the top level")
    return data


def load_preset(name: str) -> dict[str, Any]:
    """The config dict of a built-in preset (see ``preset_names()``)."""
    if name not in preset_names():
        raise ConfigError(f"--preset {name!r}: unknown; choose from {', '.join(preset_names())}")
    text = resources.files(__name__).joinpath(f"{name}.yaml").read_text()
    return _parse(text, f"preset {name}")


def load_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--config {path}: no such file")
    return _parse(path.read_text(), str(path))
