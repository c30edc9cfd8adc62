"""Deprecated path: moved to :mod:`lensrl.bench.trl` (see lensrl._compat)."""

from lensrl._compat import moved

__getattr__ = moved(__name__, "lensrl.bench.trl")
