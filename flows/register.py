"""Registration: a trained checkpoint becomes a version of `mm15-<preset>` in MLflow, then the promotion gate.

evaluate (reused when already scored) -> register (pyfunc + model card + lineage) -> gate (challenger -> champion)
"""

from __future__ import annotations

from prefect import flow

from flows.evaluate import evaluate
from mm15 import paths
from mm15.registry import model_name
from tasks.registry import gate_version, register_version


@flow(name="register")
def register(
    checkpoint: str,
    preset: str = "tiny",
    evaluation: dict | None = None,
    limit: int | None = 32,
    home: str | None = None,
) -> dict:
    """Register CHECKPOINT (a checkpoint-<step> folder of a run) as a version of mm15-PRESET, scored by
    EVALUATION (an evaluation's summary; default: evaluate it now, against the untrained PRESET, on LIMIT
    samples per benchmark), and let the gate decide whether it becomes the champion."""
    home = str(paths.use_home(home))
    if evaluation is None:
        evaluation = evaluate(
            model=checkpoint, limit=limit, baseline=f"preset:{preset}", home=home, reuse=True
        )
    registered = register_version(checkpoint, preset, evaluation)
    decision = gate_version(model_name(preset), registered["version"])
    return registered | {"decision": decision}
