"""The compute dtype: which dtype forward passes run in (``model.dtype``, ``sft.dtype``), and
mixed precision over float32 master weights. Training, SFT and ``lensrl eval`` all choose it
here (docs/training.md, "Precision: fp32 master weights, bf16 compute")."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import torch

from lensrl.train.config import DTYPES

log = logging.getLogger(__name__)


# Set to 1 to make ``dtype: auto`` behave as on a machine with native bf16 (a GPU, or a CPU with
# AVX-512 BF16 / AMX): the test suite runs once this way before a change lands, so the bf16 path
# is exercised on every machine, even where bf16 is emulated and slow.
ASSUME_BF16_ENV = "LENSRL_ASSUME_BF16"


def cpu_has_fast_bf16() -> bool:
    """True where the CPU has native bf16 matmul (AVX-512 BF16 or AMX), or where
    ``LENSRL_ASSUME_BF16=1`` says to act as if it had."""
    if os.environ.get(ASSUME_BF16_ENV, "") not in ("", "0"):
        return True
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def select_dtype(requested: str, device: torch.device) -> tuple[torch.dtype, str]:
    """Resolve ``model.dtype`` to the dtype that forward passes COMPUTE in, with the reason.

    The weights and the optimizer state always stay float32 (fp32 masters); bf16 is used only
    inside :func:`autocast`. ``auto`` picks bf16 only where it is fast: a CUDA GPU with bf16
    support, or a CPU with native bf16 (or ``LENSRL_ASSUME_BF16=1``). On an AVX2-only CPU bf16
    is emulated and ~25x slower (docs/training.md), so an explicit ``bfloat16`` there gets a
    warning with a measured matmul ratio.
    """
    if requested not in DTYPES:
        raise ValueError(f"model.dtype must be auto, float32 or bfloat16; got {requested!r}")
    if device.type == "cuda":
        fast = torch.cuda.is_bf16_supported()
        where = "GPU"
    else:
        fast = cpu_has_fast_bf16()
        where = f"CPU ({torch.backends.cpu.get_cpu_capability()})"
    if requested == "float32":
        return torch.float32, "float32 as configured"
    if requested == "bfloat16":
        if not fast:
            ratio = _bf16_slowdown()
            log.warning(
                "model.dtype=bfloat16 on a %s without native bf16: a bf16 matmul measured "
                "%.1fx slower than fp32 here; consider dtype=auto",
                where,
                ratio,
            )
        return torch.bfloat16, "bfloat16 compute over float32 weights, as configured"
    if fast:
        return torch.bfloat16, f"auto: bfloat16 compute over float32 weights ({where} has native bf16)"
    return torch.float32, f"auto: float32 ({where} has no native bf16)"


def autocast(device: torch.device | str, dtype: torch.dtype) -> Any:
    """Mixed precision: ops that gain from it (matmuls, attention) run in ``dtype`` while the
    weights, their gradients and the optimizer stay float32, as HF Trainer / TRL ``bf16=True``
    and verl's FSDP mixed precision do. A no-op context for float32. Wrap forward passes only;
    backward runs outside it, in the dtypes the forward recorded."""
    kind = device.type if isinstance(device, torch.device) else str(device).split(":")[0]
    return torch.autocast(kind, dtype=dtype, enabled=dtype != torch.float32)


def as_master(model: Any) -> Any:
    """``model`` with float32 parameters (the masters the optimizer updates): a bf16 or fp16
    checkpoint is upcast, so that updates below half an ulp of bf16 are not rounded away."""
    if any(p.dtype != torch.float32 for p in model.parameters() if p.is_floating_point()):
        model.float()
    return model


def _bf16_slowdown(size: int = 256, reps: int = 3) -> float:
    """bf16 ÷ fp32 time of a small matmul on this machine."""
    times = {}
    for dtype in (torch.float32, torch.bfloat16):
        a = torch.randn(size, size, dtype=dtype)
        a @ a
        start = time.perf_counter()
        for _ in range(reps):
            a @ a
        times[dtype] = time.perf_counter() - start
    return times[torch.bfloat16] / max(times[torch.float32], 1e-9)
