"""The whole pipeline, stage after stage, on one preset.

curate -> build the CPT and SFT mixture manifests -> continual pretraining -> SFT from CPT's last checkpoint
-> evaluate (against the untrained model) -> register in MLflow -> gate (challenger -> champion)

Every stage is cached by its inputs: curation adds only new shards, manifests are a function of the
snapshot and the mixture file, training runs live in folders named by their inputs, evaluations in
folders named by the model and the question, and a checkpoint is registered once. A rerun with nothing
changed goes straight through; a changed mixture file reruns from its manifest on.
"""

from __future__ import annotations

from prefect import flow

from flows.build_mixture import build_mixture
from flows.continual_pretrain import continual_pretrain
from flows.curate import curate
from flows.evaluate import evaluate
from flows.register import register
from flows.sft import sft
from mm15 import paths
from tasks.train import kill_trainers

# Manifest sizes for the embedded default; scaled-out runs pass their own.
MIXTURES = {"cpt": 4_096, "all": 16_384}


@flow(name="pipeline", on_cancellation=[kill_trainers], on_crashed=[kill_trainers])
def pipeline(
    preset: str = "tiny",
    mixtures: dict[str, int] | None = None,
    seed: int = 0,
    sft_mixture: str = "all",
    processes: int = 1,
    cpt_steps: int | None = None,
    sft_steps: int | None = None,
    heldout: int = 32,
    benchmarks: list[str] | None = None,
    eval_limit: int | None = 32,
    home: str | None = None,
) -> dict:
    """Curate the catalog, build the mixture manifests from its snapshot, train CPT and SFT on them (steps:
    the stage files' unless given; held-out loss on HELDOUT eval samples per category), score the model
    on BENCHMARKS (default all; EVAL_LIMIT samples each) against the untrained one, register it as a
    version of mm15-PRESET and let the gate decide whether it becomes the champion."""
    home = str(paths.use_home(home))
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
    scores = evaluate(
        model=tuned["last_checkpoint"],
        benchmarks=benchmarks,
        limit=eval_limit,
        baseline=f"preset:{preset}",
        snapshot=catalog["snapshot"],
        home=home,
        reuse=True,
    )
    model = register(checkpoint=tuned["last_checkpoint"], preset=preset, evaluation=scores, home=home)
    return {
        "catalog": catalog,
        "manifests": manifests,
        "cpt": cpt,
        "sft": tuned,
        "evaluation": scores,
        "model": model,
    }
