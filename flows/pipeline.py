"""The whole pipeline, stage after stage, on one preset.

curate -> build the CPT and SFT mixture manifests -> continual pretraining -> SFT from CPT's last checkpoint
"""

from __future__ import annotations

from prefect import flow

from flows.build_mixture import build_mixture
from flows.continual_pretrain import continual_pretrain
from flows.curate import curate
from flows.sft import sft

# Manifest sizes for the embedded default; scaled-out runs pass their own.
MIXTURES = {"cpt": 4_096, "all": 16_384}


@flow(name="pipeline")
def pipeline(
    preset: str = "tiny",
    mixtures: dict[str, int] | None = None,
    seed: int = 0,
    sft_mixture: str = "all",
    processes: int = 1,
    cpt_steps: int | None = None,
    sft_steps: int | None = None,
    heldout: int = 32,
    home: str | None = None,
) -> dict:
    """Curate the catalog, build the mixture manifests from its snapshot, then train CPT and SFT on them
    (steps: the stage files' unless given; held-out loss on HELDOUT eval samples per category)."""
    catalog = curate(preset=preset, home=home)
    manifests = {
        name: build_mixture(name=name, samples=samples, seed=seed, snapshot=catalog["snapshot"], home=home)
        for name, samples in (mixtures or MIXTURES).items()
    }
    cpt = continual_pretrain(
        preset=preset, max_steps=cpt_steps, processes=processes, heldout=heldout, home=home
    )
    tuned = sft(
        preset=preset,
        init=cpt["last_checkpoint"],
        mixture=sft_mixture,
        max_steps=sft_steps,
        processes=processes,
        heldout=heldout,
        home=home,
    )
    return {"catalog": catalog, "manifests": manifests, "cpt": cpt, "sft": tuned}
