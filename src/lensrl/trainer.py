"""Deprecated path: moved to :mod:`lensrl.train.trainer` (see lensrl._compat)."""

from lensrl._compat import moved

__getattr__ = moved(__name__, "lensrl.train.trainer", {n: "lensrl.train.cli" for n in ("configure_parser", "config_from_args", "resume_command", "run")})
