"""What every benchmark shares: the goals, A B B A ordering, medians, memory peaks, the
machine description, and one section runner that records a failure instead of raising."""

from __future__ import annotations

import logging
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger("lensrl.bench")

# Each headline number's goal (docs/benchmarks.md).
GOALS = {
    "lens_step_overhead": ("<=", 1.05),
    "trainer_vs_trl_throughput": (">=", 1.5),
    "flop_floor_ratio": ("<=", 2.0),
    "trl_lens_step_overhead": ("<=", 1.15),
    "verify_pool_speedup": (">=", 1.6),
    # lensrl ÷ TRL tokens/s on SmolLM2 (lensrl.bench.real), full fine-tuning and LoRA
    "real_vs_trl_throughput": (">=", 2.0),
    "real_vs_trl_throughput_lora": (">=", 2.0),
}


def abba(names: Sequence[str], r: int) -> list[str]:
    """Round ``r``'s order of the variants ``names``: as given on even rounds, reversed on odd
    ones (A B, B A, A B, ...), so that no variant always runs first or last under a drifting
    machine load. Every interleaved measurement of lensrl's benchmarks uses it."""
    return list(names) if r % 2 == 0 else list(names)[::-1]


def matmul_gflops(size: int = 1024, reps: int = 5) -> float:
    """Best fp32 ``size``² matmul rate of ``reps`` tries, in GFLOP/s (the machine's limit)."""
    a = torch.randn(size, size)
    b = torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * size**3 / best / 1e9


class PeakRSS:
    """Peak resident memory above the level at entry, sampled every 5 ms by a thread.

    CPU tensors have no allocator statistics like CUDA's; RSS over a baseline is what the
    operating system charges, and a sampler catches peaks inside a step.
    """

    def __init__(self) -> None:
        self.base = self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_bytes())

    def __enter__(self) -> PeakRSS:
        trim_memory()  # hand memory freed by earlier work back to the OS, or it hides this peak
        self.base = self.peak = rss_bytes()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())

    @property
    def mib(self) -> float:
        """Peak above the level at entry."""
        return (self.peak - self.base) / 2**20

    @property
    def total_mib(self) -> float:
        """Peak of the whole process (model, Python, libraries included)."""
        return self.peak / 2**20


def trim_memory() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def rss_bytes() -> int:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def is_linear(xs: list[float], ys: list[float], tolerance: float = 0.15) -> dict[str, Any]:
    """Does ``y`` grow linearly with ``x``? A least-squares line ``y = a + b·x`` (``a``: the
    fixed cost per step) and its worst relative miss; linear when that is within ``tolerance``."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    a = my - b * mx
    miss = max(abs(a + b * x - y) / y for x, y in zip(xs, ys))
    return {"x": xs, "y": ys, "intercept": a, "slope": b, "max_rel_residual": miss,
            "linear": miss <= tolerance}


def median_row(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in rows) for k in rows[0]}


@contextmanager
def quiet() -> Iterator[None]:
    """Silence the trainer's per-setup log lines during timing."""
    logger = logging.getLogger("lensrl.train")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def machine() -> dict[str, Any]:
    import transformers

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    return {
        "cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__,
        "transformers": transformers.__version__, "threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(), "load_avg_1m": load,
        "python": platform.python_version(),
    }


def section(results: dict[str, Any], key: str, fn: Callable[[], Any]) -> None:
    """Run one measurement; a failure (e.g. TRL missing) is recorded, not fatal."""
    t = time.perf_counter()
    log.info("bench: %s ...", key)
    try:
        results[key] = fn()
    except Exception as exc:  # noqa: BLE001 - a benchmark section must not sink the others
        log.warning("bench: %s failed: %s: %s", key, type(exc).__name__, exc)
        results[key] = {"error": f"{type(exc).__name__}: {exc}"}
    results.setdefault("elapsed_s", {})[key] = time.perf_counter() - t


