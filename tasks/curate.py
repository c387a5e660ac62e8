"""Curation tasks: plan shards, stage them in parallel, commit one snapshot, report."""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from mm15.catalog import open_catalog
from mm15.catalog.commit import commit_shards, committed_shards
from mm15.catalog.plan import SourceConfig, configured_sources, source_shards, synthetic_shards
from mm15.catalog.staging import ShardSpec, stage_shard


@task
def plan_shards(preset: str | None, sources: list[dict], catalog_dir: str) -> list[dict]:
    """Shards to stage: synthetic ones for `preset` plus every file of `sources`, less those already committed."""
    specs = synthetic_shards(preset) if preset else []
    for source in sources:
        specs += source_shards(SourceConfig(**{**source, "path": Path(source["path"])}))
    if (Path(catalog_dir) / "meta.ducklake").exists():
        with open_catalog(Path(catalog_dir)) as catalog:
            done = committed_shards(catalog)
        specs = [s for s in specs if s.key not in done]
    return [asdict(s) for s in specs]


def configured_source_dicts() -> list[dict]:
    return [{**asdict(s), "path": str(s.path)} for s in configured_sources()]


def _stage_run_name() -> str:
    """stage-SOURCE-SPLIT-FIRST_INDEX for synthetic shards, stage-SOURCE-SPLIT-FILE_NAME for files."""
    from prefect.runtime import task_run

    spec = task_run.parameters["spec"]
    return (
        f"stage-{spec['source']}-{spec['split']}-{Path(spec['path']).name if spec['path'] else spec['start']}"
    )


@task(retries=2, retry_delay_seconds=2, task_run_name=_stage_run_name)
def stage(spec: dict, staging_dir: str) -> dict:
    """Read and validate one shard into the staging area (skipped if already staged)."""
    return stage_shard(ShardSpec(**spec), Path(staging_dir))


@task
def commit(specs: list[dict], staging_dir: str, catalog_dir: str, message: str) -> dict:
    """Dedup, decontaminate and commit every staged shard as one catalog snapshot."""
    with open_catalog(Path(catalog_dir), read_only=False) as catalog:
        result = commit_shards(catalog, Path(staging_dir), [ShardSpec(**s) for s in specs], message=message)
    return asdict(result)


@task
def clean_staging(specs: list[dict], staging_dir: str) -> None:
    """Staged shards are in the catalog once committed: free their space."""
    for spec in specs:
        shutil.rmtree(Path(staging_dir) / ShardSpec(**spec).key, ignore_errors=True)


@task
def publish_report(result: dict) -> None:
    """Artifacts for the Prefect UI: accounting per source and a sample of rejects with reasons."""
    if not result["committed"]:
        create_markdown_artifact(
            f"Nothing new: every shard is already in snapshot {result['snapshot']}.", key="curation-summary"
        )
        return
    columns = ("source", "split", "read", "kept", "quarantined", "duplicates", "contaminated", "evicted")
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
