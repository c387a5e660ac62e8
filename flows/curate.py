"""Curation: generate the synthetic sources, ingest configured sources, commit a catalog snapshot.

plan -> stage shards (in parallel, retried, resumable) -> check formats -> commit one snapshot -> report
"""

from __future__ import annotations

import os
from pathlib import Path

from prefect import flow
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.futures import as_completed
from prefect.task_runners import ProcessPoolTaskRunner
from tqdm import tqdm

from mm15 import paths
from mm15.errors import UserError
from mm15.locks import exclusive_file
from tasks.curate import (
    check_formats,
    clean_staging,
    commit,
    configured_source_dicts,
    plan_shards,
    publish_report,
    stage,
)

CURATION_LOCK = "locks/curation.lock"  # under the home


def _workers() -> int:
    return int(os.environ.get("MM15_WORKERS", os.cpu_count() or 1))


def stage_all(specs: list[dict], staging_dir: str) -> None:
    """Stage every shard on the task runner, with a progress bar here and a progress artifact in the UI."""
    futures = [stage.submit(spec, staging_dir) for spec in specs]
    progress = create_progress_artifact(0.0, key="curation-progress", description="shards staged")
    with tqdm(total=len(futures), desc="staging shards", unit="shard", disable=None) as bar:
        for done, future in enumerate(as_completed(futures), start=1):
            stats = (
                future.result()
            )  # a shard that failed after its retries fails the flow: nothing is committed
            if "error" in stats:
                raise UserError(stats["error"])
            bar.update()
            update_progress_artifact(progress, 100 * done / len(futures))


def build_snapshot(preset: str | None, sources: list[dict], home: str | None, message: str) -> dict:
    """The curation runbook, shared by `curate` and `ingest`."""
    root = Path(home) if home else paths.home()
    catalog_dir, staging_dir = str(paths.catalog_dir(root)), str(paths.staging_dir(root))

    # Overlapping runs curate one after the other (the second finds the first's shards committed).
    with exclusive_file(root / CURATION_LOCK):
        specs = plan_shards(preset, sources, catalog_dir)
        stage_all(specs, staging_dir)
        check_formats(specs, staging_dir)
        result = commit(specs, staging_dir, catalog_dir, message=message)
        clean_staging(specs, staging_dir)
    publish_report(result)
    return result


@flow(name="curate", task_runner=ProcessPoolTaskRunner(max_workers=_workers()), log_prints=True)
def curate(preset: str = "tiny", sources: list[dict] | None = None, home: str | None = None) -> dict:
    """Build or extend the catalog: synthetic data for `preset` plus `sources` (default: catalogs/sources/)."""
    sources = configured_source_dicts() if sources is None else sources
    return build_snapshot(preset, sources, home, message=f"curate preset={preset}")


@flow(name="ingest", task_runner=ProcessPoolTaskRunner(max_workers=_workers()), log_prints=True)
def ingest(
    path: str, format: str, name: str, category: str, split: str = "train", home: str | None = None
) -> dict:
    """Add one real source (a file or folder in FORMAT) to the catalog as a new snapshot."""
    source = {"name": name, "format": format, "path": path, "category": category, "split": split}
    return build_snapshot(None, [source], home, message=f"ingest {name} ({format})")
