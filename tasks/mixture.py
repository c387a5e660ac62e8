"""Mixture tasks: build a manifest from a catalog snapshot, publish its shares."""

from __future__ import annotations

import base64
from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from mm15.catalog import open_catalog
from mm15.mixture import build_manifest, load_spec, plot_shares, read_summary, summary_table


def manifest_path(manifests_dir: str, name: str, snapshot: int, seed: int, samples: int) -> Path:
    """Same inputs, same file: a rebuild overwrites it with identical bytes."""
    return Path(manifests_dir) / name / f"{name}-snapshot{snapshot}-seed{seed}-n{samples}.parquet"


def latest_pointer(manifests_dir: str, name: str) -> Path:
    return Path(manifests_dir) / name / "LATEST"


@task
def build(
    name: str, samples: int, seed: int, snapshot: int | None, catalog_dir: str, manifests_dir: str
) -> dict:
    """Write the manifest of mixture `name` over the catalog snapshot (default: the latest)."""
    spec = load_spec(name)
    with open_catalog(Path(catalog_dir), snapshot=snapshot) as catalog:
        snapshot_id = catalog.snapshot_id()
        out = manifest_path(manifests_dir, spec.name, snapshot_id, seed, samples)
        out.parent.mkdir(parents=True, exist_ok=True)
        summary = build_manifest(catalog.con, spec, samples=samples, seed=seed, snapshot=snapshot_id, out=out)
    pointer = latest_pointer(manifests_dir, spec.name)
    tmp = pointer.with_name(".LATEST.tmp")
    tmp.write_text(out.name)
    tmp.replace(pointer)
    return {
        "mixture": spec.name,
        "manifest": str(out),
        "snapshot": snapshot_id,
        "manifest_hash": summary.manifest_hash,
    }


@task
def publish_shares(manifest: str) -> str:
    """Artifacts: the share tables (per category and per source) and a bar chart of expected vs realised."""
    summary = read_summary(Path(manifest).with_suffix(".json"))
    key = summary.mixture.lower().replace("_", "-").replace(".", "-")
    create_table_artifact(
        summary_table(summary, by="category"),
        key=f"mixture-{key}-categories",
        description=f"{summary.mixture}: snapshot {summary.snapshot}, manifest {summary.manifest_hash[:12]}",
    )
    create_table_artifact(summary_table(summary, by="source"), key=f"mixture-{key}-sources")
    chart = plot_shares(summary, Path(manifest).with_suffix(".png"))
    encoded = base64.b64encode(chart.read_bytes()).decode()
    create_markdown_artifact(
        f"# Mixture {summary.mixture}\n\nExpected vs realised shares ({chart}):\n\n"
        f"![shares](data:image/png;base64,{encoded})\n",
        key=f"mixture-{key}-chart",
    )
    return str(chart)
