"""Training data: a mixture manifest read in order from its pinned catalog snapshot, packed into rows.

    plan = plan_manifest(manifest, processor, seq_len, max_views)      # lengths from text and sizes
    rows = PackedBatches(plan, processor, micro_batch, schedule)       # a torch IterableDataset
    DataLoader(rows, batch_size=None, num_workers=N)                   # workers fetch, decode, pack

The snapshot is the one recorded in the manifest, so a curation committed while a job runs does not
change what it reads. Workers each open their own read-only connection to the catalog, fetch the
samples and images of one micro-batch, run the processor and pack; the loader hands micro-batches
back in schedule order whatever the number of workers.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from mm15 import paths
from mm15.catalog import open_catalog
from mm15.errors import UserError
from mm15.mixture.manifest import read_lineage, read_manifest
from mm15.model.processing import MM15Processor
from mm15.model.splitting import tiles_per_image
from mm15.train.packing import PackPlan, collate_rows, pack_row, plan_packs


class SampleReader:
    """Samples of one catalog snapshot by id: their messages, and image sizes or bytes."""

    def __init__(self, catalog_dir: Path | str, snapshot: int):
        self.catalog_dir = str(catalog_dir)
        self.snapshot = snapshot
        self._stack: ExitStack | None = None
        self._catalog = None

    def __getstate__(self) -> dict:  # a worker opens a connection of its own
        return {"catalog_dir": self.catalog_dir, "snapshot": self.snapshot, "_stack": None, "_catalog": None}

    def _con(self):
        if self._catalog is None:
            self._stack = ExitStack()
            self._catalog = self._stack.enter_context(
                open_catalog(Path(self.catalog_dir), snapshot=self.snapshot)
            )
        return self._catalog.con

    def close(self) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = self._catalog = None

    def samples(self, sample_ids: Sequence[str], image_column: str) -> dict[str, tuple[list, list]]:
        """id -> (messages, per image `image_column`: `size` as (width, height) or `bytes`)."""
        wanted = sorted(set(sample_ids))
        rows = (
            self._con()
            .execute(
                "SELECT sample_id, messages, image_ids FROM samples WHERE sample_id IN (SELECT unnest(?))",
                [wanted],
            )
            .fetchall()
        )
        if len(rows) != len(wanted):
            found = {r[0] for r in rows}
            missing = [s for s in wanted if s not in found]
            raise UserError(
                f"{len(missing)} samples of the manifest are not in catalog snapshot {self.snapshot} "
                f"(first: {missing[0]}): was the catalog rebuilt under it?"
            )
        image_ids = sorted({i for _, _, ids in rows for i in ids or []})
        select = "width, height" if image_column == "size" else "bytes"
        images = {
            r[0]: (r[1], r[2]) if image_column == "size" else r[1]
            for r in self._con()
            .execute(
                f"SELECT image_id, {select} FROM images WHERE image_id IN (SELECT unnest(?))", [image_ids]
            )
            .fetchall()
        }
        return {sid: (messages, [images[i] for i in ids or []]) for sid, messages, ids in rows}


@dataclass
class ManifestPlan:
    """A manifest, its lineage and how its positions pack into rows."""

    manifest: Path
    lineage: dict[str, str]
    sample_ids: list[str]
    categories: list[str]
    packs: PackPlan
    catalog_dir: str
    lengths: list[int] = field(repr=False, default_factory=list)

    @property
    def snapshot(self) -> int:
        return int(self.lineage["snapshot"])


def plan_manifest(
    manifest: Path | str,
    processor: MM15Processor,
    seq_len: int,
    max_views: int,
    catalog_dir: Path | str | None = None,
) -> ManifestPlan:
    """Read the manifest and plan its rows from token counts (texts and image sizes, no pixels)."""
    manifest = Path(manifest)
    if not manifest.is_file():
        raise UserError(f"no manifest at {manifest}")
    lineage = read_lineage(manifest)
    table = read_manifest(manifest).sort_by("position")
    sample_ids = table.column("sample_id").to_pylist()
    catalog_dir = str(catalog_dir or paths.catalog_dir())
    reader = SampleReader(catalog_dir, int(lineage["snapshot"]))
    try:
        found = reader.samples(sample_ids, "size")
    finally:
        reader.close()
    measured: dict[str, tuple[int, int, bool]] = {}
    for sid, (messages, sizes) in found.items():
        views = sum(
            tiles_per_image(processor.image_processor.split_config.grid_for(h, w, len(sizes)))
            for w, h in sizes
        )
        try:
            measured[sid] = (processor.chat_length(messages, sizes, max_length=seq_len), views, True)
        except ValueError:  # longer than a row, and a cut would split an image
            measured[sid] = (seq_len, views, False)
    lengths = [measured[s][0] for s in sample_ids]
    packs = plan_packs(
        lengths,
        [measured[s][1] for s in sample_ids],
        seq_len,
        max_views,
        [measured[s][2] for s in sample_ids],
    )
    return ManifestPlan(
        manifest, lineage, sample_ids, table.column("category").to_pylist(), packs, catalog_dir, lengths
    )


def step_rows(packs: PackPlan, global_batch: int, unit: int) -> int:
    """Packed rows per optimizer step: about `global_batch` samples at the plan's mean samples per row,
    rounded up to whole units (micro-batch x processes)."""
    per_row = packs.samples / len(packs.rows)
    return unit * max(1, math.ceil(global_batch / per_row / unit))


@dataclass(frozen=True)
class Schedule:
    """Which micro-batches one process reads: global micro-batch g holds rows [g*micro, (g+1)*micro) of
    the plan (wrapping around it), and step s is micro-batches [s*A*W, (s+1)*A*W), rank r taking every
    W-th of them. So any world size reads the same rows per step."""

    micro_batch: int
    accumulation: int
    world_size: int = 1
    rank: int = 0
    first_step: int = 0
    last_step: int = 0  # exclusive

    def micro_batches(self) -> Iterator[int]:
        per_step = self.accumulation * self.world_size
        for step in range(self.first_step, self.last_step):
            for a in range(self.accumulation):
                yield step * per_step + a * self.world_size + self.rank


class PackedBatches(IterableDataset):
    """Micro-batches of packed rows, in schedule order (loader workers take every N-th)."""

    def __init__(self, plan: ManifestPlan, processor: MM15Processor, schedule: Schedule):
        self.plan = plan
        self.processor = processor
        self.schedule = schedule
        self.reader = SampleReader(plan.catalog_dir, plan.snapshot)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        worker = get_worker_info()
        workers, me = (worker.num_workers, worker.id) if worker else (1, 0)
        try:
            for k, g in enumerate(self.schedule.micro_batches()):
                if k % workers == me:
                    yield self.micro_batch(g)
        finally:
            self.reader.close()

    def rows_of(self, g: int) -> list[int]:
        n = len(self.plan.packs.rows)
        return [(g * self.schedule.micro_batch + j) % n for j in range(self.schedule.micro_batch)]

    def micro_batch(self, g: int) -> dict[str, Any]:
        rows = [self.plan.packs.rows[r] for r in self.rows_of(g)]
        found = self.reader.samples([self.plan.sample_ids[p] for row in rows for p in row], "bytes")
        seq_len = self.plan.packs.seq_len
        packed = []
        for row in rows:
            encoded = []
            for p in row:
                messages, images = found[self.plan.sample_ids[p]]
                sample = self.processor.encode_chat(messages, images, max_length=seq_len)
                if len(sample["input_ids"]) != self.plan.lengths[p]:
                    raise RuntimeError(
                        f"position {p} encodes to {len(sample['input_ids'])} tokens, planned {self.plan.lengths[p]}"
                    )
                encoded.append(sample)
            packed.append(pack_row(encoded, seq_len, self.processor.tokenizer.pad_token_id))
        batch = collate_rows(packed, self.processor.image_processor.tile_size)
        batch["micro_batch"] = g
        batch["samples"] = sum(len(r) for r in rows)
        batch["epoch"] = g * self.schedule.micro_batch // len(self.plan.packs.rows)
        return batch


def training_loader(batches: PackedBatches, workers: int) -> DataLoader:
    """Micro-batches from `workers` processes (0: in this one), a few ahead of the trainer."""
    return DataLoader(
        batches,
        batch_size=None,
        num_workers=workers,
        worker_init_fn=worker_init if workers else None,
        prefetch_factor=4 if workers else None,
        multiprocessing_context="fork" if workers and sys.platform == "linux" else None,
    )


def worker_init(_: int) -> None:
    """Loader workers decode and resize with one thread each: the trainer's threads are the model's."""
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
