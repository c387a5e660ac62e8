"""Stage one shard of a source: read, validate, write Parquet beside a completion marker.

Each shard is staged on its own into `staging/<shard key>/` and is complete when its folder exists
(it is written under a temporary name and renamed into place). A relaunch restages only the shards
that have no folder, so a crash loses at most the shards in flight. The key changes whenever the
shard's inputs do (file contents, generator arguments, validation rules). The staging area may also be
a URL on shared storage (object stores included), with a completion marker written last instead of a
rename: see mm15/catalog/staging_area.py.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mm15.catalog import schema
from mm15.catalog.staging_area import MARKER as MARKER  # the completion marker, for callers
from mm15.catalog.staging_area import StagingArea, staging_area
from mm15.data.record import FORMAT_REASONS, Reject, Sample
from mm15.data.validate import Limits, Validated, clean_detail, validate

# Bump when validation or row layout changes, so staged shards are rebuilt.
STAGE_VERSION = 2
# Rows buffered per Parquet file before they are written (one row group per batch), and the bytes of
# text and images that end a batch sooner: peak memory is bounded by these, not by the shard's size.
BATCH_ROWS = 10_000
BATCH_BYTES = 64 * 2**20


@dataclass(frozen=True)
class ShardSpec:
    """Everything that determines a shard's rows: a range of a synthetic source, or one input file."""

    source: str
    split: str
    category: str = ""
    format: str = "synthetic"  # "synthetic" or an adapter format
    path: str = ""  # input file (adapter formats)
    root: str = ""  # the source folder paths must stay inside
    fingerprint: str = ""  # sha256 of the input file
    start: int = 0  # synthetic: first index; a JSON Lines file's part: first byte
    count: int = 0  # synthetic: samples; a JSON Lines file's part: bytes (0: the whole file)
    seed: int = 0
    image_size: int = 128

    @property
    def key(self) -> str:
        payload = json.dumps({**asdict(self), "version": STAGE_VERSION}, sort_keys=True)
        return f"{self.source}-{self.split}-{hashlib.sha256(payload.encode()).hexdigest()[:16]}"


def file_fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_records(spec: ShardSpec) -> Iterator[Sample | Reject]:
    if spec.format == "synthetic":
        from mm15.data.synthetic import generate

        yield from generate(spec.source, spec.split, spec.start, spec.count, spec.seed, spec.image_size)
    else:
        from mm15.data.adapters import read_shard

        yield from read_shard(
            spec.format,
            Path(spec.path),
            Path(spec.root),
            source=spec.source,
            category=spec.category,
            split=spec.split,
            part=(spec.start, spec.count),
        )


# Where shards are staged: a folder (Path or str) or a URL (str), see staging_area.py.
Staging = StagingArea | Path | str


def is_staged(staging: Staging, spec: ShardSpec) -> bool:
    return staging_area(staging).is_staged(spec.key)


def read_stats(staging: Staging, spec: ShardSpec) -> dict:
    return staging_area(staging).read_stats(spec.key)


def remove_staged(staging: Staging, spec: ShardSpec) -> None:
    """Free a shard's space once committed."""
    staging_area(staging).remove(spec.key)


def stage_shard(spec: ShardSpec, staging: Staging, limits: Limits = Limits()) -> dict:
    """Stage the shard unless it already is; return its stats (read, valid, quarantined)."""
    if is_staged(staging, spec):
        return read_stats(staging, spec)
    return stage_records(spec, read_records(spec), staging, limits)


def stage_records(
    spec: ShardSpec, records: Iterable[Sample | Reject], staging: Staging, limits: Limits = Limits()
) -> dict:
    """Validate `records` and write them as the staged shard `spec`, streaming: rows are written in
    batches of at most BATCH_ROWS rows (or about BATCH_BYTES of text and image bytes), so memory does
    not grow with the shard."""
    shard = spec.key  # a hash of the spec: computed once, not per row
    started = time.perf_counter()
    read = valid = quarantined = unreadable = 0
    seen_images: set[str] = set()
    # the writers are closed before the try is finished
    with staging_area(staging).writing(shard) as folder, ExitStack() as writers:
        samples, images, rejects = (
            writers.enter_context(
                _BatchWriter(folder.path(f"{name}.parquet"), table_schema, folder.filesystem)
            )
            for name, table_schema in (
                ("samples", schema.SAMPLES),
                ("images", schema.IMAGES),
                ("rejects", schema.REJECTS),
            )
        )
        for record in records:
            read += 1
            result = validate(record, limits) if isinstance(record, Sample) else record
            if isinstance(result, Validated):
                valid += 1
                samples.add({**vars(result.sample), "shard": shard}, result.sample.text_chars)
                for im in result.images:
                    if im.image_id not in seen_images:
                        seen_images.add(im.image_id)
                        images.add(vars(im), len(im.bytes))
            else:
                quarantined += 1
                unreadable += result.reason in FORMAT_REASONS  # not in the source's format
                detail = clean_detail(result.detail)  # adapters' too: the same on every run
                rejects.add(
                    {
                        **vars(result),
                        "detail": detail,
                        "split": spec.split,
                        "sample_id": None,
                        "shard": shard,
                    },
                    len(detail),
                )
        writers.close()
        stats = {
            "shard": shard,
            "source": spec.source,
            "split": spec.split,
            "read": read,
            "valid": valid,
            "quarantined": quarantined,
            "unreadable": unreadable,
            "seconds": round(time.perf_counter() - started, 3),
        }
        folder.finish(stats)  # the stats, then the completion marker
    return stats


class _BatchWriter:
    """One Parquet file written in batches of rows: a row group per batch."""

    def __init__(self, path: str, table_schema: pa.Schema, filesystem=None):
        self.schema = table_schema
        self.rows: list[dict] = []
        self.size = 0
        self.writer = pq.ParquetWriter(path, table_schema, filesystem=filesystem)

    def add(self, row: dict, size: int) -> None:
        """Buffer `row` (of about `size` bytes of text or image data); write the batch once full."""
        self.rows.append(row)
        self.size += size
        if len(self.rows) >= BATCH_ROWS or self.size >= BATCH_BYTES:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.writer.write_table(pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows, self.size = [], 0

    def __enter__(self) -> _BatchWriter:
        return self

    def __exit__(self, error_type, *_) -> None:
        try:
            if error_type is None:
                self.flush()
        finally:
            self.writer.close()


def unreadable_sources(staging: Staging, specs: Iterable[ShardSpec]) -> list[str]:
    """One line per file-based source of which no record could be read in its format (all its records
    rejected as not in the format: wrong --format or wrong file), naming the first problem."""
    by_source: dict[str, list[ShardSpec]] = {}
    for spec in specs:
        if spec.format != "synthetic":
            by_source.setdefault(spec.source, []).append(spec)
    problems, area = [], staging_area(staging)
    for _, shards in sorted(by_source.items()):
        stats = [area.read_stats(s.key) for s in shards]
        read = sum(s["read"] for s in stats)
        if read and all(s["valid"] == 0 and s.get("unreadable", 0) == s["read"] for s in stats):
            first = next(s for s, st in zip(shards, stats, strict=True) if st["read"])
            path, filesystem = area.file(first.key, "rejects.parquet")
            rejects = pq.read_table(path, columns=["detail"], filesystem=filesystem)
            detail = rejects.column("detail")[0].as_py() if rejects.num_rows else ""
            files = sorted({s.path for s in shards})
            where = files[0] if len(files) == 1 else f"{Path(files[0]).parent} ({len(files)} files)"
            problems.append(
                f"{where}: no record could be read as {shards[0].format} ({detail}); check --format"
            )
    return problems
