"""Stopping a run cleanly: SIGINT (Ctrl-C) or SIGTERM finishes the step in progress,
checkpoints it, and raises :class:`TrainingInterrupted`; the run continues with ``--resume``."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger("lensrl.train")


class TrainingInterrupted(Exception):
    """SIGINT or SIGTERM stopped the run after ``step``, whose checkpoint is saved."""

    def __init__(self, step: int, signum: int, run_dir: Path) -> None:
        super().__init__(f"interrupted at step {step} ({signal.Signals(signum).name}); "
                         f"{run_dir} holds its checkpoint: continue with --resume")
        self.step, self.signum, self.run_dir = step, signum, run_dir


class StopRequests:
    """SIGINT (Ctrl-C) and SIGTERM while training: the first asks the loop to stop after the
    step in progress, which then checkpoints and raises :class:`TrainingInterrupted`; a second
    one raises ``KeyboardInterrupt`` at once. Handlers are installed only in the main thread
    (Python delivers signals there) and the previous ones are restored on exit."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt  # the second request: stop now
        self.signum = signum
        log.warning("%s: stopping after this step, which will be checkpointed "
                    "(press Ctrl-C again to quit at once)", signal.Signals(signum).name)

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
