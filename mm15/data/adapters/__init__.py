"""Adapters for public dataset formats: input files in, `Sample` or `Reject` records out.

Each input record becomes exactly one Sample or one Reject (a wds-ocr document: one per page;
a file that cannot be parsed at all: one Reject for the file). Adapters check what only they
can check (the format's layout, paths, file sizes); image-level checks are the validator's.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

from mm15.data.adapters.hf_parquet import read_hf_parquet
from mm15.data.adapters.json_input import line_parts
from mm15.data.adapters.jsonl_text import read_jsonl_text
from mm15.data.adapters.llava import read_llava
from mm15.data.adapters.origin import ShardOrigin
from mm15.data.adapters.wds_ocr import read_wds_ocr
from mm15.data.record import Reject, Sample

Reader = Callable[[Path, Path, ShardOrigin, int], Iterator[Sample | Reject]]

SHARD_SUFFIXES: dict[str, tuple[str, ...]] = {
    "llava": (".json", ".jsonl"),
    "hf-parquet": (".parquet",),
    "wds-ocr": (".tar",),
    "jsonl-text": (".jsonl",),
}
READERS: dict[str, Reader] = {
    "llava": read_llava,
    "hf-parquet": read_hf_parquet,
    "wds-ocr": read_wds_ocr,
    "jsonl-text": read_jsonl_text,
}
FORMATS: tuple[str, ...] = ("llava", "hf-parquet", "wds-ocr", "jsonl-text")
DEFAULT_MAX_FILE_BYTES = 64 * 2**20
PART_BYTES = 16 * 2**20  # JSON Lines files are staged in parts of about this size, in parallel


def list_shards(fmt: str, path: Path) -> list[Path]:
    """The input files of a source, sorted: PATH may be one file or a folder (searched recursively
    for the format's files: *.json/*.jsonl for llava, *.parquet for hf-parquet, *.tar for wds-ocr,
    *.jsonl for jsonl-text; hidden files and folders such as .cache are skipped).
    Raise ValueError with a one-line message for an unknown format or when nothing is found."""
    suffixes = _suffixes(fmt)
    path = Path(path)
    if path.is_file():
        if path.suffix.lower() not in suffixes:
            raise ValueError(f"{path} is not a {fmt} file: expected {' or '.join(suffixes)}")
        return [path]
    if not path.is_dir():
        raise ValueError(f"{path} does not exist")
    shards = []
    for folder, subfolders, files in os.walk(path):  # symlinked folders are not followed
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        shards += [
            Path(folder, name)
            for name in files
            if not name.startswith(".") and Path(name).suffix.lower() in suffixes
        ]
    if not shards:
        raise ValueError(f"no {' or '.join(suffixes)} files for format {fmt} under {path}")
    return sorted(shards)


def shard_parts(fmt: str, shard: Path) -> list[tuple[int, int]]:
    """How a shard file is cut to be staged in parallel: JSON Lines files of over PART_BYTES into parts
    of about that size, at line starts; any other file is one part, (0, 0)."""
    if shard.suffix.lower() == ".jsonl" and fmt in ("llava", "jsonl-text"):
        return line_parts(shard, PART_BYTES)
    return [(0, 0)]


def read_shard(
    fmt: str,
    shard: Path,
    root: Path,
    *,
    source: str,
    category: str,
    split: str,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    part: tuple[int, int] = (0, 0),
) -> Iterator[Sample | Reject]:
    """Every record of one shard file, as a Sample or a Reject; `root` is the source folder (the
    folder PATH, or the file's parent when PATH is a file): image paths must resolve inside it.
    `part` = (first byte, bytes) reads one part of a JSON Lines file (see `shard_parts`).
    Bad input never raises; a missing or unreadable shard file raises OSError (callers retry)."""
    _suffixes(fmt)
    shard, root = Path(shard), Path(root)
    origin = ShardOrigin.of(shard, root, source=source, category=category, split=split, task=fmt, part=part)
    return READERS[fmt](shard, root, origin, max_file_bytes)


def _suffixes(fmt: str) -> tuple[str, ...]:
    if fmt not in SHARD_SUFFIXES:
        raise ValueError(f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}")
    return SHARD_SUFFIXES[fmt]
