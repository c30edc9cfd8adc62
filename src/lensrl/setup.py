"""Deprecated path: moved to :mod:`lensrl.train.state` (see lensrl._compat)."""

from lensrl._compat import moved

__getattr__ = moved(__name__, "lensrl.train.state")
