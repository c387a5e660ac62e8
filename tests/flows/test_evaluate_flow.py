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
    summary = evaluate(
        model="preset:tiny", benchmarks=["general", "science"], limit=2, baseline="preset:tiny"
    )
    assert set(summary["benchmarks"]) == {"general", "science"}
    assert summary["baseline"]["benchmarks"] == summary["benchmarks"]  # the same weights: no delta
    assert Path(summary["paths"]["markdown"]).is_file() and summary["mlflow_run_id"]
    with get_client(sync_client=True) as client:
        keys = {a.key for a in client.read_artifacts()}
    assert {"evaluation-scores", "evaluation-report"} <= keys
