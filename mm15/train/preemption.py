"""Preemption: a SIGTERM is remembered until the step in flight has finished, then the run saves and stops."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

PREEMPTED_EXIT = 143  # 128 + SIGTERM, what a shell reports for a process stopped by it


class PreemptionGuard:
    """Catches SIGTERM while installed; `requested` tells whether one came."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True

    def restore(self) -> None:
        signal.signal(signal.SIGTERM, self._previous)


class Preempted(Exception):
    """Training stopped at a step boundary on SIGTERM, after saving a checkpoint."""

    def __init__(self, step: int, out: Path):
        super().__init__(
            f"stopped by SIGTERM after step {step}; checkpoint-{step} saved in {out}: "
            "rerun with --resume to continue"
        )
        self.step = step
