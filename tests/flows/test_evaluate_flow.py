"""The evaluation flow against a real Prefect API: scores, the report as artifacts, the MLflow run."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.evaluate import evaluate

pytestmark = pytest.mark.flow


def test_evaluate_flow_publishes_scores_and_report(prefect_api, train_home, tmp_path, monkeypatch):
    from prefect import get_client

    monkeypatch.setenv("MM15_HOME", str(train_home))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    state = evaluate(
        model="preset:tiny",
        benchmarks=["general", "science"],
        limit=2,
        baseline="preset:tiny",
        return_state=True,
    )
    summary = state.result()
    assert set(summary["benchmarks"]) == {"general", "science"}
    assert summary["baseline"]["benchmarks"] == summary["benchmarks"]  # the same weights: no delta
    assert Path(summary["paths"]["markdown"]).is_file() and summary["mlflow_run_id"]
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:  # this run's artifacts: other tests share the API
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])
            )
        )
    keys = {a.key for a in found}
    assert {"evaluation-scores", "evaluation-report"} <= keys
