"""Atomic writes: a file or folder appears complete under its final name, or not at all.

Everything is written under a temporary name beside its destination (same filesystem, so the final
rename is atomic) and renamed into place only after the writer finished; on any failure the
temporary is removed. A reader, or a run resumed after a kill, never sees half a file.
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mm15.errors import DiskFullError


@contextmanager
def atomic_output(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside `path` to write a file or a folder to; rename it onto `path` after.

    An existing file at `path` is replaced atomically; an existing folder is removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
        if tmp.is_dir() and path.is_dir():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except OSError as error:
        if error.errno == errno.ENOSPC:
            raise DiskFullError(path, _size(tmp)) from None
        raise
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def write_text_atomic(path: Path | str, text: str) -> Path:
    """Write `text` to `path` atomically; return `path`."""
    with atomic_output(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def _size(path: Path) -> int:
    """Bytes written so far under `path` (a file or a folder)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0
