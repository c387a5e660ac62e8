"""Mixture tasks: build a manifest from a catalog snapshot, publish its shares."""

from __future__ import annotations

import base64
from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from mm15.mixture import plot_shares, read_summary, summary_table
from mm15.mixture.store import build_named


@task
def build(
    name: str, samples: int, seed: int, snapshot: int | None, catalog_dir: str, manifests_dir: str
) -> dict:
    """Write the manifest of mixture `name` over the catalog snapshot (default: the latest)."""
    return build_named(name, samples, seed, snapshot, Path(catalog_dir), Path(manifests_dir))


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
