"""Exclusive file locks between the processes of one machine (flock): released by the operating system
when the holder exits in any way, so a killed process never leaves a stale lock behind."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def exclusive_file(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if missing) while the block runs; wait for it if another
    process (or another thread of this one) holds it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
