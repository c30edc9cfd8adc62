"""LENS inside verl (checked against verl 0.9.1; extra ``lensrl[verl]``).

Load it without forking verl, in every process that imports verl (Ray workers included):
``VERL_USE_EXTERNAL_MODULES=lensrl.integrations.verl``. Importing this module does two things.

1. **Estimators.** ``lens``, ``lens_mixed_only``, ``lens_negative_only`` and the reference
   ``lensrl_grpo``, ``lensrl_dr_grpo``, ``lensrl_nsr`` (prefixed: verl has its own ``grpo``) are
   registered with verl's ``@register_adv_est``. Each one calls
   :func:`lensrl.core.compute_advantages`; no LENS math lives here.
2. **The bridge.** verl's ``ray_trainer.compute_advantage`` hands a registered estimator
   ``token_level_rewards``, ``response_mask``, ``index`` (uid) and ``config``, but not
   ``old_log_probs``, which LENS needs for π̄ (docs/algorithm.md §6 fact 3). We wrap that function: for our
   names it calls the estimator with ``old_log_probs`` added (and the verifier's ``judged`` flags
   when they are in the batch); every other estimator goes to verl's function untouched.

Why a wrapper and not only a trainer subclass: the wrapper is one small function that covers every
trainer that calls ``compute_advantage`` — the v1 trainers (sync and async, through
``v1.utils``), the legacy ``RayPPOTrainer`` (which inlines the call and has no hook) and the
experimental ones. A subclass that did the work itself would copy verl's 50-line
``_compute_advantage`` (KL-in-reward, rollout correction, TransferQueue write-back) and drift with
it. The subclass in :mod:`lensrl.integrations.verl_trainer` (``trainer.v1.trainer_mode=lens_sync``)
therefore only adds what a function cannot: the ``lens/*`` step metrics and the ``judged`` flags
read back from TransferQueue. Advantages are the same without it.

Grouping: verl groups rows by uid, in any order and of any size. We lay the batch out as
``P`` groups of ``G = max size``, pad with NaN ("cannot judge", left out of every statistic by
core), call core once and scatter back. A group with one judged row gets 0 here; verl's GRPO
gives it ``score / (1 + eps)``.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor
from verl.trainer.ppo import core_algos, ray_trainer

from lensrl.core import compute_advantages, group_diagnostics, sequence_mean_logprob

# The names shared with the lens_sync trainer live in verl_state, which both import, so that
# this module and verl_trainer do not import each other.
from lensrl.integrations.verl_state import HPARAMS, JUDGED, LAST_METRICS, VERL_ESTIMATORS

__all__ = ["HPARAMS", "JUDGED", "LAST_METRICS", "VERL_ESTIMATORS", "install",
           "lens_outcome_advantage"]

def _hparam(config: Any, key: str) -> Any:
    value = config.get(key, None) if config is not None and hasattr(config, "get") else None
    return HPARAMS[key] if value is None else value


def _group_layout(index: np.ndarray) -> tuple[Tensor, int, int]:
    """Slot of each row in a ``(P, G)`` layout grouped by uid (first-appearance order)."""
    group_of: dict[Any, int] = {}
    filled: list[int] = []
    slot_pairs = []
    for uid in index.tolist():
        g = group_of.setdefault(uid, len(group_of))
        if g == len(filled):
            filled.append(0)
        slot_pairs.append((g, filled[g]))
        filled[g] += 1
    G = max(filled, default=1)
    slots = torch.tensor([g * G + k for g, k in slot_pairs], dtype=torch.long)  # (B,)
    return slots, len(group_of), G


def _correctness(
    token_level_rewards: Tensor, judged: np.ndarray | None, estimator: str
) -> Tensor:
    """``(B,)`` float64 on the CPU: 1 right, 0 wrong, NaN where ``judged`` is False; a
    ValueError for a reward other than 0/1."""
    # B scalars: the group math runs on the CPU whatever device verl's batch is on.
    scores = token_level_rewards.detach().sum(-1).double().cpu()  # (B,)
    if not bool(((scores == 0) | (scores == 1)).all()):
        raise ValueError(
            f"estimator {estimator!r} needs 0/1 rewards (docs/algorithm.md §6 fact 13); got values "
            f"{sorted(set(scores.tolist()))[:5]}: use lensrl.integrations.verl_reward.compute_score, "
            "not a ±1 scorer such as math_dapo"
        )
    if judged is not None:
        scores[~torch.as_tensor(np.asarray(judged, dtype=bool))] = float("nan")
    return scores


def lens_outcome_advantage(
    token_level_rewards: Tensor,
    response_mask: Tensor,
    index: np.ndarray,
    *,
    estimator: str,
    old_log_probs: Tensor | None = None,
    judged: np.ndarray | None = None,
    config: Any = None,
) -> tuple[Tensor, dict[str, float]]:
    """Advantages ``(B, T)`` and diagnostics for a verl batch of ``B`` rows grouped by ``index``.

    Args:
        token_level_rewards: ``(B, T)``; the row sum is the 0/1 correctness, as verl's GRPO reads it.
        response_mask: ``(B, T)``, 1 on response tokens (EOS included: docs/algorithm.md §4 choice 3).
        index: ``(B,)`` uid per row; rows of a group need not be adjacent.
        estimator: a lensrl.core estimator name (``lens``, ``grpo``, …).
        old_log_probs: ``(B, T)`` per-token log-probs under π_old; required by the LENS names.
        judged: ``(B,)`` bool from ``compute_score``; False rows count as "cannot judge".
        config: verl's ``algorithm`` config, read for :data:`HPARAMS`.
    """
    correct = _correctness(token_level_rewards, judged, estimator)
    if old_log_probs is not None:
        seq_lp = sequence_mean_logprob(old_log_probs.detach().double(), response_mask).cpu()
    elif estimator.startswith("lens"):
        raise ValueError(
            f"estimator {estimator!r} needs old_log_probs, which verl's compute_advantage does not "
            "pass: load the bridge with VERL_USE_EXTERNAL_MODULES=lensrl.integrations.verl"
        )
    else:
        seq_lp = torch.zeros_like(correct)
    slots, P, G = _group_layout(np.asarray(index))
    correct_pad = torch.full((P * G,), float("nan"), dtype=torch.float64).index_copy(
        0, slots, correct
    )
    lp_pad = torch.zeros(P * G, dtype=torch.float64).index_copy(0, slots, seq_lp)
    d_floor = float(_hparam(config, "lens_d_floor"))
    adv_pad = compute_advantages(
        correct_pad,
        lp_pad,
        estimator=estimator,
        alpha=float(_hparam(config, "lens_alpha")),
        std_ddof=int(_hparam(config, "lens_std_ddof")),
        eps=float(_hparam(config, "lens_eps")),
        group_size=G,
        d_floor=d_floor,
    )
    metrics = group_diagnostics(correct_pad, lp_pad, adv_pad, group_size=G, d_floor=d_floor)
    metrics["verify/frac_unjudged"] = float(torch.isnan(correct).double().mean())  # pads excluded
    adv = adv_pad[slots].to(device=response_mask.device, dtype=token_level_rewards.dtype)  # (B,)
    advantages = adv[:, None] * response_mask  # (B, T)
    return advantages, metrics


def _make_estimator(core_name: str) -> Callable[..., tuple[Tensor, Tensor]]:
    def estimator_fn(
        token_level_rewards: Tensor,
        response_mask: Tensor,
        index: np.ndarray,
        config: Any = None,
        old_log_probs: Tensor | None = None,
        judged: np.ndarray | None = None,
        metrics: dict[str, float] | None = None,
        **_: Any,
    ) -> tuple[Tensor, Tensor]:
        """verl estimator; returns ``(advantages, returns)``, both ``(B, T)`` and equal."""
        adv, diag = lens_outcome_advantage(
            token_level_rewards,
            response_mask,
            index,
            estimator=core_name,
            old_log_probs=old_log_probs,
            judged=judged,
            config=config,
        )
        if metrics is not None:
            metrics.update(diag)
        return adv, adv

    estimator_fn.__name__ = f"compute_{core_name}_advantage"
    return estimator_fn


for _name, _core_name in VERL_ESTIMATORS.items():
    if _name not in core_algos.ADV_ESTIMATOR_REGISTRY:
        core_algos.register_adv_est(_name)(_make_estimator(_core_name))


def _wrap(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def compute_advantage(data: Any, adv_estimator: Any, *args: Any, **kwargs: Any) -> Any:
        name = getattr(adv_estimator, "value", adv_estimator)
        if name not in VERL_ESTIMATORS:
            return original(data, adv_estimator, *args, **kwargs)
        config = kwargs.get("config", args[4] if len(args) > 4 else None)
        keys = set(data.batch.keys())
        if "response_mask" not in keys:
            data.batch["response_mask"] = ray_trainer.compute_response_mask(data)
        judged = JUDGED.get()
        if judged is None:
            judged = data.non_tensor_batch.get("judged")
        metrics: dict[str, float] = {}
        adv, returns = core_algos.get_adv_estimator_fn(name)(
            token_level_rewards=data.batch["token_level_rewards"],
            response_mask=data.batch["response_mask"],
            index=data.non_tensor_batch["uid"],
            config=config,
            old_log_probs=data.batch["old_log_probs"] if "old_log_probs" in keys else None,
            judged=judged,
            metrics=metrics,
        )
        data.batch["advantages"], data.batch["returns"] = adv, returns
        LAST_METRICS.clear()
        LAST_METRICS.update(metrics)
        return data

    compute_advantage.__lensrl_bridge__ = True  # type: ignore[attr-defined]
    return compute_advantage


def install() -> None:
    """Put the wrapper in ``ray_trainer`` and in every loaded verl module that imported it by name.

    Modules imported later bind the wrapper themselves. Calling it again does nothing.
    """
    original = ray_trainer.compute_advantage
    if getattr(original, "__lensrl_bridge__", False):
        return
    wrapped = _wrap(original)
    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("verl") and (
            getattr(module, "compute_advantage", None) is original
        ):
            module.compute_advantage = wrapped  # type: ignore[attr-defined]


install()

# The lens_sync trainer needs verl's v1 stack (TransferQueue, extra verl[verl-core]); the
# estimators and the bridge do not.
if importlib.util.find_spec("transfer_queue") is not None:
    import lensrl.integrations.verl_trainer  # noqa: E402, F401
