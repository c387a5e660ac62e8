"""A training run in MLflow: params and lineage at the start, metrics per step, held-out losses, the
loss curve and run.json at the end (through `mm15.tracking`, the one module that imports MLflow)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mm15.tracking import Run

PARAMS = (
    "stage",
    "preset",
    "mixture",
    "manifest_hash",
    "catalog_snapshot",
    "total_steps",
    "rows_per_step",
    "world_size",
    "strategy",
    "init",
)


def start_tracking(summary: dict[str, Any], preset: str, stage: str) -> Run:
    """Open the run named in `summary` (a resumed run keeps its MLflow run) or a new one."""
    tags = {"mm15.stage": stage, "mm15.preset": preset}
    run = Run("mm15-train", summary.get("mlflow_run_id"), name=f"{stage}-{preset}", tags=tags)
    config = summary["stage_config"]
    params = {k: summary[k] for k in PARAMS} | {k: config[k] for k in ("optimizer", "peak_lr", "seq_len")}
    params["git_commit"] = run.client.get_run(run.run_id).data.tags.get("mm15.git_commit", "unknown")
    run.log_params({k: ("" if v is None else v) for k, v in params.items()})
    if summary.get("heldout_before"):
        run.log_metrics({f"heldout_before/{k}": v for k, v in summary["heldout_before"].items()}, 0)
    return run


def finish_tracking(
    run: Run, summary: dict[str, Any], chart: Path | None, run_file: Path, status: str
) -> None:
    if summary.get("heldout_after"):
        after = {f"heldout_after/{k}": v for k, v in summary["heldout_after"].items()}
        run.log_metrics(after, summary["step"])
    for artifact in (chart, run_file):
        if artifact:
            run.log_artifact(artifact)
    run.finish("FINISHED" if status == "finished" else "KILLED")
