"""Curation tasks: plan shards, stage them in parallel, commit one snapshot, report."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from mm15.catalog import open_catalog
from mm15.catalog.commit import commit_shards
from mm15.catalog.plan import plan_shards as plan
from mm15.catalog.schema import ACCOUNTING_COLUMNS
from mm15.catalog.sources import configured_sources, source_config
from mm15.catalog.staging import ShardSpec, remove_staged, stage_shard, staging_area, unreadable_sources
from mm15.errors import UserError


@task
def plan_shards(preset: str | None, sources: list[dict], catalog_dir: str) -> list[dict]:
    """Shards to stage: synthetic ones for `preset` plus every file of `sources`, less those already committed."""
    configs = [source_config(f"source {source.get('name')!r}", **source) for source in sources]
    return [asdict(s) for s in plan(preset, configs, Path(catalog_dir))]


def configured_source_dicts() -> list[dict]:
    return [s.model_dump(mode="json") for s in configured_sources()]


def _stage_run_name() -> str:
    """stage-SOURCE-SPLIT-FIRST_INDEX for synthetic shards, stage-SOURCE-SPLIT-FILE_NAME for files
    (-FIRST_BYTE for a part of a large JSON Lines file)."""
    from prefect.runtime import task_run

    spec = task_run.parameters["spec"]
    if not spec["path"]:
        return f"stage-{spec['source']}-{spec['split']}-{spec['start']}"
    part = f"-{spec['start']}" if spec["count"] else ""
    return f"stage-{spec['source']}-{spec['split']}-{Path(spec['path']).name}{part}"


# `staging` is a folder or a URL (mm15.paths.staging_url) as a string: the machine staging a shard may
# not be the one that planned it.
@task(retries=2, retry_delay_seconds=2, task_run_name=_stage_run_name)
def stage(spec: dict, staging: str) -> dict:
    """Read and validate one shard into the staging area (skipped if already staged). A user error (a full
    disk) comes back as {"error": message} rather than a retried failure with a worker's traceback."""
    try:
        return stage_shard(ShardSpec(**spec), staging)
    except UserError as error:
        return {"error": str(error)}


@task
def check_formats(specs: list[dict], staging: str) -> None:
    """Refuse a source of which no record could be read in its format (nothing is committed)."""
    shards = [ShardSpec(**s) for s in specs]
    problems = unreadable_sources(staging, shards)
    if problems:
        clean_staging.fn(specs, staging)
        raise UserError(problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))


@task
def commit(specs: list[dict], staging: str, catalog_dir: str, message: str) -> dict:
    """Dedup, decontaminate and commit every staged shard as one catalog snapshot."""
    shards = [ShardSpec(**s) for s in specs]
    with open_catalog(Path(catalog_dir), read_only=False) as catalog:
        # one staging area for the whole commit: a URL's completion markers are read once
        result = commit_shards(catalog, staging_area(staging), shards, message=message)
    return asdict(result)


@task
def clean_staging(specs: list[dict], staging: str) -> None:
    """Staged shards are in the catalog once committed: free their space."""
    for spec in specs:
        remove_staged(staging, ShardSpec(**spec))


@task
def publish_report(result: dict) -> None:
    """Artifacts for the Prefect UI: accounting per source and a sample of rejects with reasons."""
    if not result["committed"]:
        create_markdown_artifact(
            f"Nothing new: every shard is already in snapshot {result['snapshot']}.", key="curation-summary"
        )
        return
    columns = ("source", "split", *ACCOUNTING_COLUMNS)
    create_table_artifact(
        [{c: row[c] for c in columns} for row in result["accounting"]],
        key="curation-accounting",
        description=f"Snapshot {result['snapshot']}: rows read = kept + quarantined + duplicates + contaminated",
    )
    if result["reject_sample"]:
        create_table_artifact(
            result["reject_sample"], key="curation-rejects", description="A sample of rejects"
        )
    totals = {c: sum(r[c] for r in result["accounting"]) for c in columns[2:]}
    create_markdown_artifact(
        f"# Catalog snapshot {result['snapshot']}\n\n"
        + "\n".join(f"- **{k}**: {v}" for k, v in totals.items())
        + f"\n- **commit time**: {result['seconds']} s\n",
        key="curation-summary",
    )
