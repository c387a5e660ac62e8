"""Mixture construction: a catalog snapshot + a mixture spec -> a deterministic manifest.

build the manifest (DuckDB over the snapshot) -> publish its shares
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from mm15 import paths
from tasks.mixture import build, publish_shares


@flow(name="build-mixture")
def build_mixture(
    name: str = "all",
    samples: int = 10_000,
    seed: int = 0,
    snapshot: int | None = None,
    home: str | None = None,
) -> dict:
    """Build the manifest of mixture NAME (catalogs/mixtures/NAME.yaml) with SAMPLES positions."""
    root = Path(home) if home else paths.home()
    manifest = build(
        name, samples, seed, snapshot, str(paths.catalog_dir(root)), str(paths.manifests_dir(root))
    )
    publish_shares(manifest["manifest"])
    return manifest
