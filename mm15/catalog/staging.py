"""Stage one shard of a source: read, validate, write Parquet beside a completion marker.

Each shard is staged on its own into `staging/<shard key>/` and is complete when its folder exists
(it is written under a temporary name and renamed into place). A relaunch restages only the shards
that have no folder, so a crash loses at most the shards in flight. The key changes whenever the
shard's inputs do (file contents, generator arguments, validation rules).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mm15.atomic import atomic_output
from mm15.catalog import schema
from mm15.data.record import FORMAT_REASONS, Reject, Sample
from mm15.data.validate import Limits, Validated, validate

# Bump when validation or row layout changes, so staged shards are rebuilt.
STAGE_VERSION = 2
MARKER = "_SUCCESS"


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
    start: int = 0
    count: int = 0
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
        )


def is_staged(staging: Path, spec: ShardSpec) -> bool:
    return (staging / spec.key / MARKER).exists()


def read_stats(staging: Path, spec: ShardSpec) -> dict:
    return json.loads((staging / spec.key / "stats.json").read_text())


def stage_shard(spec: ShardSpec, staging: Path, limits: Limits = Limits()) -> dict:
    """Stage the shard unless it already is; return its stats (read, valid, quarantined)."""
    if is_staged(staging, spec):
        return read_stats(staging, spec)
    return stage_records(spec, read_records(spec), staging, limits)


def stage_records(
    spec: ShardSpec, records: Iterable[Sample | Reject], staging: Path, limits: Limits = Limits()
) -> dict:
    """Validate `records` and write them as the staged shard `spec`."""
    final = staging / spec.key
    started = time.perf_counter()
    samples, rejects, images, seen_images = [], [], [], set()
    read = 0
    for record in records:
        read += 1
        result = validate(record, limits) if isinstance(record, Sample) else record
        if isinstance(result, Validated):
            samples.append({**asdict(result.sample), "shard": spec.key})
            for im in result.images:
                if im.image_id not in seen_images:
                    seen_images.add(im.image_id)
                    images.append(asdict(im))
        else:
            rejects.append({**asdict(result), "split": spec.split, "sample_id": None, "shard": spec.key})
    stats = {
        "shard": spec.key,
        "source": spec.source,
        "split": spec.split,
        "read": read,
        "valid": len(samples),
        "quarantined": len(rejects),
        "unreadable": sum(r["reason"] in FORMAT_REASONS for r in rejects),  # not in the source's format
        "seconds": round(time.perf_counter() - started, 3),
    }
    with atomic_output(final) as tmp:  # a half-written folder from an older layout is replaced
        tmp.mkdir()
        for name, rows, table_schema in (
            ("samples", samples, schema.SAMPLES),
            ("images", images, schema.IMAGES),
            ("rejects", rejects, schema.REJECTS),
        ):
            pq.write_table(pa.Table.from_pylist(rows, schema=table_schema), tmp / f"{name}.parquet")
        (tmp / "stats.json").write_text(json.dumps(stats))
        (tmp / MARKER).touch()
    return stats


def unreadable_sources(staging: Path, specs: Iterable[ShardSpec]) -> list[str]:
    """One line per file-based source of which no record could be read in its format (all its records
    rejected as not in the format: wrong --format or wrong file), naming the first problem."""
    by_source: dict[str, list[ShardSpec]] = {}
    for spec in specs:
        if spec.format != "synthetic":
            by_source.setdefault(spec.source, []).append(spec)
    problems = []
    for _, shards in sorted(by_source.items()):
        stats = [read_stats(staging, s) for s in shards]
        read = sum(s["read"] for s in stats)
        if read and all(s["valid"] == 0 and s.get("unreadable", 0) == s["read"] for s in stats):
            first = pq.read_table(staging / shards[0].key / "rejects.parquet", columns=["detail"])
            detail = first.column("detail")[0].as_py() if first.num_rows else ""
            where = (
                shards[0].path if len(shards) == 1 else f"{Path(shards[0].path).parent} ({len(shards)} files)"
            )
            problems.append(
                f"{where}: no record could be read as {shards[0].format} ({detail}); check --format"
            )
    return problems
