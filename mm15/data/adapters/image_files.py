"""Image files named by a record: resolved inside the source folder, size-checked, read as bytes."""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import Any

from mm15.data.adapters.origin import Rejected, type_name
from mm15.data.record import Reason


def resolve_inside(root: Path, base: Path, ref: Any) -> Path:
    """The file `ref` (relative to `base`) names, after `..` and symlinks, if it lies inside `root`."""
    if not isinstance(ref, str) or not ref:
        raise Rejected(Reason.MALFORMED, f"image path must be a non-empty string, got {type_name(ref)}")
    if PurePath(ref).is_absolute():
        raise Rejected(Reason.PATH_ESCAPE, f"absolute image path {ref!r}")
    try:
        resolved = (base / ref).resolve()
        inside = resolved.is_relative_to(root.resolve())
    except ValueError as error:  # e.g. an embedded NUL byte
        raise Rejected(Reason.MALFORMED, f"image path {ref!r}: {error}") from None
    except (OSError, RuntimeError) as error:  # a symlink loop, a name too long
        raise Rejected(Reason.MISSING_FILE, f"image path {ref!r}: {error}") from None
    if not inside:
        raise Rejected(Reason.PATH_ESCAPE, f"image path {ref!r} resolves outside the source folder")
    return resolved


def read_limited(path: Path, max_bytes: int, name: str) -> bytes:
    """The bytes of `path`, refused by its size before reading when it is over `max_bytes`."""
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise Rejected(Reason.MISSING_FILE, f"image {name!r} is not a regular file")
        if size > max_bytes:
            raise Rejected(
                Reason.IMAGE_TOO_LARGE, f"image {name!r} is {size} bytes, over the {max_bytes} limit"
            )
        with open(path, "rb") as file:
            data = file.read(max_bytes + 1)  # the file may have grown since stat()
    except FileNotFoundError:
        raise Rejected(Reason.MISSING_FILE, f"image {name!r} does not exist") from None
    except OSError as error:
        raise Rejected(Reason.MISSING_FILE, f"image {name!r} cannot be read: {error.strerror}") from None
    if len(data) > max_bytes:
        raise Rejected(Reason.IMAGE_TOO_LARGE, f"image {name!r} is over the {max_bytes} byte limit")
    return data


def read_image(root: Path, base: Path, ref: Any, max_bytes: int) -> bytes:
    """The encoded bytes of the image `ref` names (not decoded: the validator checks them)."""
    return read_limited(resolve_inside(root, base, ref), max_bytes, ref)
