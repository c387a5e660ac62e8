"""The manifest file: one row per training position, written as deterministic Parquet.

Same content, same bytes (with the same pyarrow): an explicit schema, fixed row groups and
compression, and no timestamps. The manifest hash is a sha256 of the content (column names, types
and values), so it does not change with compression, chunking or library versions. Manifests are
written and hashed chunk by chunk, so a large one is never held whole in memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mm15.atomic import atomic_output

MANIFEST_SCHEMA = pa.schema(
    [
        pa.field("position", pa.int64(), nullable=False),  # order of training, 0-based
        pa.field("batch", pa.int64(), nullable=False),  # position // batch_size
        pa.field("sample_id", pa.string(), nullable=False),  # the catalog key of the sample
        pa.field("category", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("repeat", pa.int32(), nullable=False),  # 0 on a row's first use, then its epoch
        pa.field("n_images", pa.int32()),  # lets a loader budget image tiles without the catalog
    ]
)
ROW_GROUP_ROWS = 1 << 17


class ContentHasher:
    """sha256 of a table's content fed in chunks; the digest does not depend on how it is chunked.

    Per column, three streams are hashed: the null flags, the value lengths (strings) and the
    values (little-endian numbers, or the valid strings' UTF-8 bytes); the digest combines each
    column's name, type, row count and stream digests, in column order.
    """

    def __init__(self, schema: pa.Schema):
        self.schema = schema
        self.rows = 0
        self.streams = [[hashlib.sha256() for _ in range(3)] for _ in schema]

    def update(self, table: pa.Table) -> None:
        if [(f.name, f.type) for f in table.schema] != [(f.name, f.type) for f in self.schema]:
            raise ValueError(f"chunk columns differ from {self.schema.names}")
        self.rows += table.num_rows
        for column, (nulls, lengths, values) in zip(table.columns, self.streams, strict=True):
            for array in column.chunks:
                is_null = array.is_null().to_numpy(zero_copy_only=False)
                nulls.update(is_null.tobytes())
                if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
                    _update_strings(lengths, values, array, is_null)
                else:
                    numbers = pc.fill_null(array, 0).to_numpy(zero_copy_only=False)
                    values.update(numbers.astype(numbers.dtype.newbyteorder("<")).tobytes())

    def hexdigest(self) -> str:
        digest = hashlib.sha256()
        for field, streams in zip(self.schema, self.streams, strict=True):
            digest.update(f"{field.name}:{field.type}\0{self.rows}\0".encode())
            for stream in streams:
                digest.update(stream.digest())
        return digest.hexdigest()


def content_hash(table: pa.Table) -> str:
    """sha256 of a table's column names, types and values (nulls included): see ContentHasher."""
    hasher = ContentHasher(table.schema)
    hasher.update(table)
    return hasher.hexdigest()


def write_manifest(
    chunks: pa.Table | Iterable[pa.Table], path: Path, metadata: dict[str, str] | None = None
) -> Path:
    """Write a manifest (a table, or its chunks in order) with `metadata` to `path`, atomically.

    Row groups hold ROW_GROUP_ROWS rows whatever the chunking, so the bytes depend on content only
    when chunks are whole row groups (the last may be short), as build_manifest's are.
    """
    schema = MANIFEST_SCHEMA.with_metadata({f"mm15.{k}": v for k, v in (metadata or {}).items()})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"compression": "zstd", "compression_level": 3, "use_dictionary": ["category", "source"]}
    with (
        atomic_output(path) as tmp,
        pq.ParquetWriter(tmp, schema, write_statistics=True, store_schema=True, **options) as writer,
    ):
        for chunk in [chunks] if isinstance(chunks, pa.Table) else chunks:
            writer.write_table(chunk.select(schema.names).cast(schema), row_group_size=ROW_GROUP_ROWS)
    return path


def read_manifest(path: Path) -> pa.Table:
    """The manifest as an Arrow table (its lineage is in the schema metadata, keys `mm15.*`)."""
    return pq.read_table(path)


def read_lineage(path: Path) -> dict[str, str]:
    """The lineage stored in a manifest (mixture, snapshot, seed, manifest_hash), without reading its rows."""
    metadata = pq.read_schema(path).metadata or {}
    return {k.decode()[5:]: v.decode() for k, v in metadata.items() if k.startswith(b"mm15.")}


def _update_strings(lengths: Any, values: Any, array: pa.Array, is_null: np.ndarray) -> None:
    width = np.int32 if pa.types.is_string(array.type) else np.int64
    offsets = np.frombuffer(
        array.buffers()[1], width, len(array) + 1, array.offset * np.dtype(width).itemsize
    )
    sizes = np.where(is_null, 0, np.diff(offsets.astype(np.int64)))
    lengths.update(sizes.astype("<i8").tobytes())
    data = array.buffers()[2]
    if data is None:
        return
    if not is_null.any():
        values.update(memoryview(data)[offsets[0] : offsets[-1]])
        return
    for start, end in zip(offsets[:-1][sizes > 0], offsets[1:][sizes > 0], strict=True):
        values.update(memoryview(data)[start:end])  # a null's slot may hold bytes: valid values only
