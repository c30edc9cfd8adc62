"""Old import paths of modules that moved in 0.2 (issue 16's layout). Each old module is a
shim: importing it warns once, and its names resolve lazily in the new module, so
``from lensrl.trainer import train`` keeps working until 0.3."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping
from typing import Any


def moved(old: str, new: str, names: Mapping[str, str] | None = None) -> Callable[[str], Any]:
    """The ``__getattr__`` of shim module ``old``: a name listed in ``names`` (name -> module)
    comes from that module, any other from ``new``."""
    warnings.warn(f"{old} moved to {new}; import from there (the old path goes away in 0.3)",
                  DeprecationWarning, stacklevel=3)
    routes = dict(names or {})

    def __getattr__(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        module = importlib.import_module(routes.get(name, new))
        try:
            return getattr(module, name)
        except AttributeError:
            raise AttributeError(f"module {old!r} (moved to {new}) has no attribute {name!r}") \
                from None

    return __getattr__
