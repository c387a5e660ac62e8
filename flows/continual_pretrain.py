"""Continual pretraining: the CPT stage on the latest `cpt` manifest, on the `gpu` work pool.

train (a subprocess, holding a `gpu` slot; torchrun for several devices) -> the last checkpoint
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from mm15 import paths
from tasks.train import kill_trainers, train_stage


@flow(name="continual-pretrain", on_cancellation=[kill_trainers], on_crashed=[kill_trainers])
def continual_pretrain(
    preset: str = "tiny",
    mixture: str = "cpt",
    max_steps: int | None = None,
    processes: int = 1,
    heldout: int = 32,
    home: str | None = None,
) -> dict:
    """Train the CPT stage (catalogs/stages/cpt.yaml) of PRESET on MIXTURE's latest manifest."""
    root = str(Path(home) if home else paths.home())
    return train_stage(
        "cpt", preset, root, mixture=mixture, max_steps=max_steps, processes=processes, heldout=heldout
    )
