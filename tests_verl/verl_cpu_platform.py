"""A CPU platform for verl 0.9.1, for tests only: verl's own actor worker on a CPU over gloo.

verl picks its device through ``verl.plugin.platform``: ``VERL_PLATFORM`` names a registered
``PlatformBase`` subclass, and ``VERL_USE_EXTERNAL_MODULES`` imports the module that registers it
in every process that imports verl (the test driver and each Ray worker). verl ships CUDA, NPU and
ROCm platforms only; this one says "device cpu, backend gloo" and stubs what a CPU lacks:

- ``device_module``: ``torch.cpu`` has no memory statistics, no RNG state, no ``set_device`` or
  ``mem_get_info``; verl calls them after every step (``perf/max_memory_*``) and around offloads.
  They report 0 bytes / do nothing here.
- ``ray_resource_name`` stays ``"GPU"``: ``RayResourcePool`` always asks its placement groups for
  one accelerator per worker (``use_gpu=True`` is hard-coded in verl's resource pool manager), so
  the test's Ray cluster declares a GPU resource that no process ever touches.
- Profiling, IPC and the CUDA runtime handle are no-ops / ``None``.

One patch, not a stub: verl's ``initialize_global_process_group_ray`` builds the backend string
``"cpu:gloo,<device>:<backend>"``, which for device ``cpu`` names ``cpu`` twice and torch refuses
it. Its default backend is set to plain ``"gloo"`` here (the function's ``__defaults__``, so the
copies other verl modules imported by name see it too).

A user on GPUs needs none of this: verl detects the NVIDIA platform itself.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from verl.plugin.platform import PlatformBase, PlatformRegistry
from verl.utils import distributed as verl_distributed

NAME = "lensrl_cpu_test"

verl_distributed.initialize_global_process_group_ray.__defaults__ = (None, "gloo")


class _CpuDeviceModule(types.ModuleType):
    """``torch.cpu`` plus the ``torch.cuda`` calls verl makes, as no-ops on a CPU."""

    def __init__(self) -> None:
        super().__init__("lensrl_cpu_device")

    def __getattr__(self, name: str) -> Any:  # anything else verl asks of torch.cpu
        return getattr(torch.cpu, name)

    @staticmethod
    def is_available() -> bool:
        return True

    @staticmethod
    def current_device() -> str:
        return "cpu"  # what torch.cpu.current_device() returns; verl passes it to .to()

    @staticmethod
    def device_count() -> int:
        return 1

    @staticmethod
    def set_device(device: Any) -> None:
        return None

    @staticmethod
    def synchronize(device: Any = None) -> None:
        return None

    @staticmethod
    def empty_cache() -> None:
        return None

    @staticmethod
    def ipc_collect() -> None:
        return None

    @staticmethod
    def mem_get_info(device: Any = None) -> tuple[int, int]:
        return 0, 0

    @staticmethod
    def memory_allocated(device: Any = None) -> int:
        return 0

    max_memory_allocated = memory_reserved = max_memory_reserved = memory_allocated

    @staticmethod
    def reset_peak_memory_stats(device: Any = None) -> None:
        return None

    @staticmethod
    def set_per_process_memory_fraction(fraction: float, device: Any = None) -> None:
        return None

    @staticmethod
    def get_rng_state(device: Any = None) -> torch.Tensor:
        return torch.get_rng_state()

    @staticmethod
    def set_rng_state(state: torch.Tensor, device: Any = None) -> None:
        torch.set_rng_state(state)

    @staticmethod
    def manual_seed(seed: int) -> None:
        torch.manual_seed(seed)

    manual_seed_all = manual_seed

    @staticmethod
    def get_device_name(device: Any = None) -> str:
        return "cpu"


@PlatformRegistry.register(platform=NAME)
class CpuTestPlatform(PlatformBase):
    """Device ``cpu``, backend ``gloo``; selected with ``VERL_PLATFORM=lensrl_cpu_test``."""

    _module = _CpuDeviceModule()

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self) -> types.ModuleType:
        return self._module

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        return False  # never auto-detected: only VERL_PLATFORM selects it

    def current_device(self) -> str:  # type: ignore[override]
        return "cpu"  # verl calls model.to(get_device_id()); an int would mean cuda:N

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index: int) -> None:
        return None

    def synchronize(self, device_index: int | None = None) -> None:
        return None

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        return None

    def empty_cache(self) -> None:
        return None

    def get_device_capability(self, device_index: int = 0) -> tuple[int | None, int | None]:
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        return "CUDA_VISIBLE_DEVICES"  # Ray sets it for the declared GPU; nothing reads it here

    @contextmanager
    def nvtx_range(self, msg: str) -> Iterator[None]:
        yield

    def profiler_start(self) -> None:
        return None

    def profiler_stop(self) -> None:
        return None

    def ray_resource_name(self) -> str:
        return "GPU"

    def ray_noset_envvars(self) -> list[str]:
        return []

    def is_ipc_supported(self) -> bool:
        return False

    def cudart(self) -> Any:
        return None
