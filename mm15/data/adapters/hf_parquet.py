"""Hugging Face Parquet in "the_cauldron" layout, one row per sample:
``images: list<struct<bytes, path>>``, ``texts: list<struct<user, assistant, source>>``.

Read row group by row group in small record batches, so memory stays bounded by a row group, not
the file, and a corrupt row group loses only its own rows (each becomes a Reject).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mm15.data.adapters.image_files import read_image
from mm15.data.adapters.image_markers import with_image_markers
from mm15.data.adapters.origin import Rejected, ShardOrigin, type_name
from mm15.data.record import Reason, Reject, Sample

COLUMNS = {"images": {"bytes", "path"}, "texts": {"user", "assistant"}}
# pyarrow reports a file that is not Parquet, or a corrupt page, with any of these
PARQUET_ERRORS = (pa.ArrowException, OSError, ValueError, KeyError)


def read_hf_parquet(
    shard: Path, root: Path, origin: ShardOrigin, max_file_bytes: int, batch_size: int = 16
) -> Iterator[Sample | Reject]:
    """One Sample or Reject per row; a file that is not Parquet in this layout is one Reject."""
    with open(shard, "rb") as file:  # a missing or unreadable shard raises OSError here: the caller retries
        try:
            parquet = pq.ParquetFile(file)
            _check_layout(parquet.schema_arrow)
        except Rejected as error:
            yield origin.reject("", error)
            return
        except PARQUET_ERRORS as error:
            yield origin.reject("", Rejected(Reason.MALFORMED, f"not a readable Parquet file: {error}"))
            return
        row = 0
        for group in range(parquet.num_row_groups):
            end = row + parquet.metadata.row_group(group).num_rows
            batches = parquet.iter_batches(batch_size=batch_size, row_groups=[group], columns=list(COLUMNS))
            while (batch := _next_batch(batches, group)) is not None:
                if isinstance(batch, Rejected):  # a corrupt row group: each of its rows not yet read is lost
                    yield from (origin.reject(f"row {lost}", batch) for lost in range(row, end))
                    break
                for values in batch.to_pylist():
                    yield _sample_or_reject(values, f"row {row}", origin, shard.parent, root, max_file_bytes)
                    row += 1
            row = end


def _next_batch(batches: Iterator[pa.RecordBatch], group: int) -> pa.RecordBatch | Rejected | None:
    try:
        return next(batches, None)
    except PARQUET_ERRORS as error:
        return Rejected(Reason.MALFORMED, f"row group {group} is unreadable: {error}")


def _check_layout(schema: pa.Schema) -> None:
    for name, fields in COLUMNS.items():
        if name not in schema.names:
            raise Rejected(Reason.MALFORMED, f"no '{name}' column: not the_cauldron layout")
        kind = schema.field(name).type
        is_list = pa.types.is_list(kind) or pa.types.is_large_list(kind)
        if not (is_list and pa.types.is_struct(kind.value_type)) or not fields <= {
            field.name for field in kind.value_type
        }:
            expected = f"list<struct<{', '.join(sorted(fields))}, ...>>"
            raise Rejected(Reason.MALFORMED, f"column '{name}' is {kind}, expected {expected}")


def _sample_or_reject(
    values: dict[str, Any], within: str, origin: ShardOrigin, base: Path, root: Path, max_file_bytes: int
) -> Sample | Reject:
    try:
        return to_sample(values, origin, within, base, root, max_file_bytes)
    except Rejected as error:
        return origin.reject(within, error)


def to_sample(
    values: dict[str, Any], origin: ShardOrigin, within: str, base: Path, root: Path, max_file_bytes: int
) -> Sample:
    """The Sample for one row (as `to_pylist` gives it); raises `Rejected` for a row of the wrong shape."""
    texts = values["texts"]
    if not isinstance(texts, list):
        raise Rejected(Reason.MALFORMED, f"'texts' must be a list, got {type_name(texts)}")
    messages = []
    for index, text in enumerate(texts):
        user, assistant = (
            (text.get("user"), text.get("assistant")) if isinstance(text, dict) else (None, None)
        )
        if not isinstance(user, str) or not isinstance(assistant, str):
            raise Rejected(Reason.MALFORMED, f"texts[{index}] needs string 'user' and 'assistant'")
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    images = [
        _image_bytes(index, image, base, root, max_file_bytes)
        for index, image in enumerate(values["images"] or [])
    ]
    text_source = next((t["source"] for t in texts if isinstance(t.get("source"), str)), None)
    meta = {"text_source": text_source} if text_source else {}
    return origin.sample(within, with_image_markers(messages, len(images)), images=images, meta=meta)


def _image_bytes(index: int, image: Any, base: Path, root: Path, max_file_bytes: int) -> bytes:
    if not isinstance(image, dict):
        raise Rejected(Reason.MALFORMED, f"images[{index}] is null")
    data = image.get("bytes")
    if isinstance(data, bytes):
        if len(data) > max_file_bytes:
            raise Rejected(
                Reason.IMAGE_TOO_LARGE,
                f"images[{index}] is {len(data)} bytes, over the {max_file_bytes} limit",
            )
        return data
    if image.get("path") is not None:  # no bytes: a file next to the Parquet file, like llava
        return read_image(root, base, image["path"], max_file_bytes)
    raise Rejected(Reason.MALFORMED, f"images[{index}] has neither bytes nor path")
