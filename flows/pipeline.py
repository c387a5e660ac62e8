"""The whole pipeline, stage after stage, on one preset."""

from __future__ import annotations

from prefect import flow

from flows.build_mixture import build_mixture
from flows.curate import curate

# Manifest sizes for the embedded default; scaled-out runs pass their own.
MIXTURES = {"cpt": 4_096, "all": 16_384}


@flow(name="pipeline")
def pipeline(
    preset: str = "tiny", mixtures: dict[str, int] | None = None, seed: int = 0, home: str | None = None
) -> dict:
    """Curate the catalog, then build the CPT and SFT mixture manifests from its snapshot."""
    catalog = curate(preset=preset, home=home)
    manifests = {
        name: build_mixture(name=name, samples=samples, seed=seed, snapshot=catalog["snapshot"], home=home)
        for name, samples in (mixtures or MIXTURES).items()
    }
    return {"catalog": catalog, "manifests": manifests}
