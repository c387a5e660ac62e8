"""The whole pipeline, stage after stage, on one preset."""

from __future__ import annotations

from prefect import flow

from flows.curate import curate


@flow(name="pipeline")
def pipeline(preset: str = "tiny", home: str | None = None) -> dict:
    """Curate the catalog (later stages chain here as they land)."""
    catalog = curate(preset=preset, home=home)
    return {"catalog": catalog}
