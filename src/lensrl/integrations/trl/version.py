"""The TRL versions the adapter is checked against; importing lensrl.integrations.trl checks
the installed one first, before anything imports TRL."""

from __future__ import annotations

import os
import warnings

from packaging.version import Version

TRL_MIN, TRL_MAX = "1.14", "1.17"  # supported: TRL_MIN <= trl < TRL_MAX (the pin in pyproject)


def check_trl() -> None:
    try:
        import trl
    except ImportError as err:
        raise ImportError("lensrl.integrations.trl needs TRL: pip install 'lensrl[trl]'") from err
    version = Version(trl.__version__)
    if Version(TRL_MIN) <= version < Version(TRL_MAX):
        return
    message = (
        f"lensrl.integrations.trl supports trl>={TRL_MIN},<{TRL_MAX} (found {trl.__version__}): "
        "it overrides GRPOTrainer's private _calculate_rewards and "
        "_generate_and_score_completions, whose shape can change between releases. Install a "
        f"supported version (pip install 'trl>={TRL_MIN},<{TRL_MAX}'), or set "
        "LENSRL_ALLOW_ANY_TRL=1 to try this one at your own risk."
    )
    if os.environ.get("LENSRL_ALLOW_ANY_TRL") == "1":
        warnings.warn(message, stacklevel=3)
    else:
        raise ImportError(message)
