"""Curation: generate the synthetic sources, ingest configured sources, commit a catalog snapshot.

plan -> stage shards (in parallel, retried, resumable) -> check formats -> commit one snapshot -> report

Shards are staged on a process pool, or on Dask (MM15_TASK_RUNNER=dask; see tasks/runners.py), into the
home's staging folder or MM15_STAGING_URL; planning and the commit run in the flow's own process.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.futures import as_completed
from prefect.task_runners import TaskRunner
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
from tasks.runners import curation_task_runner

CURATION_LOCK = "locks/curation.lock"  # under the home


def stage_all(specs: list[dict], staging: str, runner: TaskRunner) -> None:
    """Stage every shard on `runner` (started only when there is something to stage, and stopped
    before the commit), with a progress bar here and a progress artifact in the UI."""
    if not specs:
        return
    progress = create_progress_artifact(0.0, key="curation-progress", description="shards staged")
    with runner, tqdm(total=len(specs), desc="staging shards", unit="shard", disable=None) as bar:
        futures = [runner.submit(stage, {"spec": spec, "staging": staging}) for spec in specs]
        for done, future in enumerate(as_completed(futures), start=1):
            # a shard that failed after its retries fails the flow: nothing is committed
            stats = future.result()
            if "error" in stats:
                raise UserError(stats["error"])
            bar.update()
            update_progress_artifact(progress, 100 * done / len(futures))


def build_snapshot(preset: str | None, sources: list[dict], home: str | None, message: str) -> dict:
    """The curation runbook, shared by `curate` and `ingest`."""
    root = Path(home) if home else paths.home()
    catalog_dir, staging = str(paths.catalog_dir(root)), paths.staging_url(root)
    runner = curation_task_runner()  # chosen now, from this run's environment: a bad choice fails here

    # Overlapping runs curate one after the other (the second finds the first's shards committed).
    with exclusive_file(root / CURATION_LOCK):
        specs = plan_shards(preset, sources, catalog_dir)
        stage_all(specs, staging, runner)
        check_formats(specs, staging)
        result = commit(specs, staging, catalog_dir, message=message)
        clean_staging(specs, staging)
    publish_report(result)
    return result


@flow(name="curate", log_prints=True)
def curate(preset: str = "tiny", sources: list[dict] | None = None, home: str | None = None) -> dict:
    """Build or extend the catalog: synthetic data for `preset` plus `sources` (default: catalogs/sources/)."""
    sources = configured_source_dicts() if sources is None else sources
    return build_snapshot(preset, sources, home, message=f"curate preset={preset}")


@flow(name="ingest", log_prints=True)
def ingest(
    path: str, format: str, name: str, category: str, split: str = "train", home: str | None = None
) -> dict:
    """Add one real source (a file or folder in FORMAT) to the catalog as a new snapshot."""
    source = {"name": name, "format": format, "path": path, "category": category, "split": split}
    return build_snapshot(None, [source], home, message=f"ingest {name} ({format})")
