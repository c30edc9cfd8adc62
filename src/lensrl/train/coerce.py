"""Config values: the error that names a field, the range check every section runs, and the
conversion of a raw value (YAML, ``--set``, ``config.json``) to its field's type.

YAML 1.1 reads ``1e-6`` as a string, ``"10"`` may be quoted, ``4.5`` is no sample count and
``"no"`` is no boolean: :func:`convert` turns each value into its field's type or raises a
:class:`ConfigError` naming ``section.key``, the value and the type wanted.
"""

from __future__ import annotations

import contextlib
import math
import types
import typing
from typing import Any


class ConfigError(ValueError):
    """A bad configuration value; the message names the field."""


def check(ok: bool, name: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{name} = {value!r} is invalid: must be {allowed}")


_NONE = ("none", "null", "~")


class _Unconvertible(ValueError):
    """What a value should have been (the message ends "must be ...")."""


def _to(value: Any, tp: Any) -> Any:
    """``value`` as type ``tp`` (str, int, float, bool, ``X | None``, ``list[X]``)."""
    if typing.get_origin(tp) in (types.UnionType, typing.Union):
        if value is None or (isinstance(value, str) and value.strip().lower() in _NONE):
            return None
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        try:
            return _to(value, inner[0])
        except _Unconvertible as exc:
            raise _Unconvertible(f"{exc} or null") from None
    if typing.get_origin(tp) is list:
        if isinstance(value, str):  # --set task.levels=[1,2]
            import yaml

            with contextlib.suppress(yaml.YAMLError):  # then refused as no list below
                value = yaml.safe_load(value)
        (item,) = typing.get_args(tp)
        if not isinstance(value, list | tuple):
            raise _Unconvertible(f"a list of {_WANTS.get(item, 'values')}")
        try:
            return [_to(v, item) for v in value]
        except _Unconvertible:
            raise _Unconvertible(f"a list of {_WANTS.get(item, 'values')}") from None
    if tp not in _WANTS:  # a type this converter does not know (a nested section): as given
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
    elif tp is int and not isinstance(value, bool):
        if isinstance(value, int):
            return value
        number = _number(value)
        if number is not None and number.is_integer():
            return int(number)
    elif tp is float and not isinstance(value, bool):
        number = _number(value)
        if number is not None:
            return number
    elif tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)  # run.name: 7
    raise _Unconvertible(_WANTS.get(tp, str(tp)))


# what each type wants, in an error message
_WANTS: dict[Any, str] = {bool: "true or false", int: "a whole number",
                          float: "a number (e.g. 0.5 or 1e-6)", str: "a string"}


def _number(value: Any) -> float | None:
    """A finite float from an int, a float or a string that spells one ("1e-6"), else None."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def convert(value: Any, section_cls: type, key: str, where: str) -> Any:
    """``value`` converted to the type of field ``key`` of ``section_cls``, or a ConfigError
    ``"<where> = <value> is invalid: must be <type>"``. Unknown keys pass through (the caller
    names them)."""
    tp = typing.get_type_hints(section_cls).get(key)
    if tp is None:
        return value
    try:
        return _to(value, tp)
    except _Unconvertible as exc:
        raise ConfigError(f"{where} = {value!r} is invalid: must be {exc}") from None


