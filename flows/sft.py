"""Supervised fine-tuning: the SFT stage on the latest manifest of an SFT mixture, from a checkpoint
(CPT's last, by default the preset's fresh weights), on the `gpu` work pool.

train (a subprocess, holding a `gpu` slot; torchrun for several devices) -> the last checkpoint
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from mm15 import paths
from tasks.train import kill_trainers, train_stage


@flow(name="sft", on_cancellation=[kill_trainers], on_crashed=[kill_trainers])
def sft(
    preset: str = "tiny",
    init: str | None = None,
    mixture: str = "all",
    max_steps: int | None = None,
    processes: int = 1,
    heldout: int = 32,
    home: str | None = None,
) -> dict:
    """Train the SFT stage (catalogs/stages/sft.yaml) of PRESET on MIXTURE's latest manifest, from INIT."""
    root = str(Path(home) if home else paths.home())
    return train_stage(
        "sft",
        preset,
        root,
        init=init,
        mixture=mixture,
        max_steps=max_steps,
        processes=processes,
        heldout=heldout,
    )
