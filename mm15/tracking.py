"""MLflow in one place: where runs are tracked, and the few calls training, evaluation and registration make.

The tracking URI is `MLFLOW_TRACKING_URI` when set, else `sqlite:///$MM15_HOME/mlflow.db` (an absolute
path: MLflow's own default is a file in whatever the working directory is). Nothing else in `mm15/`
imports MLflow. Calls go through `MlflowClient` with explicit run ids, so they work from any thread.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mm15 import paths

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def tracking_uri() -> str:
    """Where runs and models are tracked."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{paths.home() / 'mlflow.db'}"


def artifact_root() -> str | None:
    """Where a new experiment keeps its artifacts: beside a SQLite store (MLflow's default is ./mlruns in
    whatever the working directory is); a tracking server decides for itself (None)."""
    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").resolve().as_uri()
    return None


def client():
    """An MlflowClient on `tracking_uri()` (importing MLflow takes a second or two: done on first use)."""
    import mlflow

    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    return mlflow.MlflowClient(uri)


def git_commit() -> str:
    """The commit of the code that runs ("unknown" outside a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=paths.PROJECT_ROOT, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def lineage_tags() -> dict[str, str]:
    """Tags every run carries besides its own: the code's commit and, inside Prefect, the flow run."""
    tags = {"mm15.git_commit": git_commit()}
    if flow_run := os.environ.get("MM15_FLOW_RUN_ID"):
        tags["mm15.prefect_flow_run_id"] = flow_run
    return tags


def download_model(uri: str) -> Path:
    """The `save_pretrained` folder of a logged or registered model (`models:/NAME@ALIAS`, `runs:/ID/PATH`),
    downloaded from the tracking server or store."""
    import mlflow

    from mm15.errors import UserError

    client()
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
    except Exception as e:  # MLflow raises many kinds; the user needs the one line
        raise UserError(
            f"cannot fetch {uri} from {tracking_uri()}: {' '.join(str(e).split())[:300]}"
        ) from None
    configs = sorted(local.rglob("config.json"), key=lambda p: len(p.parts))
    if not configs:
        raise UserError(f"{uri} holds no model folder (no config.json among its files)")
    return configs[0].parent


class Run:
    """One MLflow run, created or reopened by id, that metrics, params and files are logged to."""

    def __init__(
        self,
        experiment: str,
        run_id: str | None = None,
        name: str | None = None,
        tags: Mapping[str, str] | None = None,
    ):
        self.client = client()
        if run_id is None:
            found = self.client.get_experiment_by_name(experiment)
            experiment_id = (
                found.experiment_id
                if found
                else self.client.create_experiment(experiment, artifact_location=artifact_root())
            )
            run = self.client.create_run(experiment_id, run_name=name, tags=lineage_tags() | dict(tags or {}))
            run_id = run.info.run_id
        self.run_id = run_id
        self._pending: list[Any] = []

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        logged = self.client.get_run(self.run_id).data.params
        fresh = [Param(k, str(v)[:6000]) for k, v in params.items() if k not in logged]
        if fresh:
            self.client.log_batch(self.run_id, params=fresh)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, str(value))

    def log_metrics(self, metrics: Mapping[str, float], step: int, timestamp_ms: int | None = None) -> None:
        """Queue metrics for `step`; they are written on `flush` (a batch at a time)."""
        import time

        from mlflow.entities import Metric

        stamp = timestamp_ms or int(time.time() * 1000)
        self._pending += [Metric(k, float(v), stamp, step) for k, v in metrics.items() if v is not None]

    def flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:1000], self._pending[1000:]
            self.client.log_batch(self.run_id, metrics=batch)

    def log_artifact(self, path: Path | str, folder: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), folder)

    def finish(self, status: str = "FINISHED") -> None:
        self.flush()
        self.client.set_terminated(self.run_id, status)
