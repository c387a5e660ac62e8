"""The integration test: local servers (`mm15 up` against this session's Prefect API: an MLflow server on
loopback, the cpu and gpu process workers, the deployments of prefect.yaml), the pipeline deployment
triggered and run by a worker to the end on the tiny preset as `make run` runs it, then two overlapping
runs of a worse model. Checks the flow run and its artifacts, the MLflow runs and metrics, the registered
versions, their aliases and lineage, the acceptance figures of the mixtures, and that the model learns."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from mm15.mixture import read_summary
from mm15.mixture.store import latest_manifest
from mm15.paths import manifests_dir

pytestmark = [pytest.mark.flow, pytest.mark.slow]

MM15 = [sys.executable, "-m", "mm15.cli"]

# docs/RECIPE.md section 4: final shares of the "all" SFT mixture
PAPER_SHARES = {
    "text_rich": 0.372,
    "refer_ground": 0.225,
    "general": 0.113,
    "math": 0.056,
    "code": 0.023,
    "science": 0.011,
    "multi_image": 0.10,
    "text_only": 0.10,
}
ARTIFACTS = {
    "curation-summary",
    "mixture-all-categories",
    "mixture-cpt-categories",
    "train-cpt",
    "train-sft",
    "evaluation-scores",
    "evaluation-report",
    "promotion-decision",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_deployment(parameters: dict, runs: int = 1, timeout: float = 1200) -> list:
    """Trigger the weekly pipeline deployment now (`runs` times at once) and wait for the worker to finish
    the runs."""
    from prefect import get_client
    from prefect.deployments import run_deployment

    flow_runs = [
        run_deployment("pipeline/pipeline-weekly", parameters=parameters, timeout=0) for _ in range(runs)
    ]
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            flow_runs = [client.read_flow_run(r.id) for r in flow_runs]
            if all(r.state and r.state.is_final() for r in flow_runs):
                return flow_runs
            time.sleep(5)
    raise AssertionError(
        f"the pipeline runs did not finish within {timeout} s: {[r.state for r in flow_runs]}"
    )


def _artifact_keys(flow_run_id) -> set[str]:
    """Artifact keys of a flow run and of its subflows."""
    from prefect import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
    )

    with get_client(sync_client=True) as client:
        tree, level = [flow_run_id], [flow_run_id]
        while level:
            children = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=level))
            )
            level = [c.id for c in children]
            tree += level
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=tree))
        )
    return {a.key for a in found if a.key}


def test_pipeline_deployment_on_local_servers(prefect_api, home, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "MM15_HOME": str(home)}
    up = subprocess.run(
        [*MM15, "up", "--mlflow-port", str(_free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert up.returncode == 0, up.stderr[-3000:]
    try:
        endpoints = json.loads((home / "services" / "endpoints.json").read_text())
        again = subprocess.run(
            [*MM15, "up", "--no-deploy"], env=env, capture_output=True, text=True, timeout=120
        )
        assert again.returncode == 0 and "already running" in again.stdout + again.stderr
        import mlflow

        uri = endpoints["mlflow_tracking_uri"]
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)  # MLflow keeps a process-wide URI: other tests may have set one
        _first_run_promotes_a_model_that_learns(home)
        _overlapping_runs_of_a_worse_model_register_it_once_and_do_not_promote_it(home)
    finally:
        down = subprocess.run([*MM15, "down"], env=env, capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    assert not (home / "services" / "mlflow.json").exists()
    from prefect import get_client

    with get_client(sync_client=True) as client:  # the session's server was not up's to stop
        assert client.api_healthcheck() is None


def _first_run_promotes_a_model_that_learns(home: Path) -> None:
    import mlflow

    (flow_run,) = _run_deployment({"heldout": 0})
    assert flow_run.state.is_completed(), flow_run.state
    assert _artifact_keys(flow_run.id) >= ARTIFACTS

    client = mlflow.MlflowClient(mlflow.get_tracking_uri())
    champion = client.get_model_version_by_alias("mm15-tiny", "champion")
    assert int(champion.version) == 1
    assert int(client.get_model_version_by_alias("mm15-tiny", "challenger").version) == 1
    tags = champion.tags
    assert tags["mm15.prefect_flow_run_id"] == str(flow_run.id)
    assert str(flow_run.id) in tags["mm15.prefect_flow_run_url"]
    assert tags["mm15.preset"] == "tiny" and tags["mm15.git_commit"]
    assert tags["mm15.gate.promoted"] == "true"
    all_mix = read_summary(latest_manifest(manifests_dir(home), "all").with_suffix(".json"))
    assert tags["mm15.manifest_hash"] == all_mix.manifest_hash
    assert tags["mm15.catalog_snapshot"] == str(all_mix.snapshot)
    assert "## " in champion.description  # the model card

    train = client.get_experiment_by_name("mm15-train")
    runs = client.search_runs([train.experiment_id])
    assert {r.data.params["stage"] for r in runs} == {"cpt", "sft"}
    assert all("loss" in r.data.metrics for r in runs)
    evals = client.search_runs([client.get_experiment_by_name("mm15-eval").experiment_id])
    assert any("eval/mmbase" in r.data.metrics for r in evals)

    # the mixtures: the paper's shares of the "all" mixture, the four OCR sources equal in every CPT batch
    for category, share in PAPER_SHARES.items():
        assert abs(all_mix.categories[category].realized - share) < 0.005, category
    cpt_manifest = latest_manifest(manifests_dir(home), "cpt")
    cpt = pq.read_table(cpt_manifest, columns=["batch", "source"])
    batch_size = read_summary(cpt_manifest.with_suffix(".json")).batch_size
    for b in range(cpt.num_rows // batch_size):
        sources = cpt.filter(pc.equal(cpt["batch"], b))["source"].to_pylist()
        assert {s: sources.count(s) for s in set(sources)} == {
            s: batch_size // 4 for s in ("pdfa", "idl", "renderedtext", "docstruct")
        }

    # the tiny pipeline learns: the trained model beats the untrained one clearly in at least 4 categories
    report = _report_of(home, tags["mm15.checkpoint"])
    base = report["baseline"]["categories"]
    margins = {k: v - base.get(k, 0.0) for k, v in report["categories"].items()}
    assert sum(margin >= 8.0 for margin in margins.values()) >= 4, margins
    assert report["mmbase"] > report["baseline"]["mmbase"]
    assert float(tags["mm15.score.mmbase"]) == pytest.approx(report["mmbase"])

    # the champion loads as a pyfunc model and answers
    import pandas as pd

    from tests.images import png

    model = mlflow.pyfunc.load_model("models:/mm15-tiny@champion")
    answers = model.predict(pd.DataFrame({"image": [png(3)], "prompt": ["What colour is the shape?"]}))
    assert len(answers) == 1 and isinstance(answers[0], str)


def _overlapping_runs_of_a_worse_model_register_it_once_and_do_not_promote_it(home: Path) -> None:
    """Two runs at once, as two schedules that overlap: curation, manifests and CPT are reused, SFT (5
    steps: a worse model) trains once, and the model is registered once and not promoted."""
    import mlflow

    runs = _run_deployment({"sft_steps": 5, "heldout": 0}, runs=2)
    assert all(r.state.is_completed() for r in runs), [r.state for r in runs]
    client = mlflow.MlflowClient(mlflow.get_tracking_uri())
    assert sorted(int(v.version) for v in client.search_model_versions("name = 'mm15-tiny'")) == [1, 2]
    worse = client.get_model_version("mm15-tiny", "2")
    assert worse.tags["mm15.gate.promoted"] == "false", worse.tags
    assert float(worse.tags["mm15.score.mmbase"]) < float(
        client.get_model_version("mm15-tiny", "1").tags["mm15.score.mmbase"]
    )
    assert int(client.get_model_version_by_alias("mm15-tiny", "champion").version) == 1
    assert int(client.get_model_version_by_alias("mm15-tiny", "challenger").version) == 2
    assert len(list((home / "runs").glob("cpt-tiny-*"))) == 1
    assert len(list((home / "runs").glob("sft-tiny-*"))) == 2


def _report_of(home: Path, checkpoint: str) -> dict:
    """The evaluation report the pipeline wrote for `checkpoint` (with the untrained baseline)."""
    for file in (home / "evals").glob("*/report.json"):
        report = json.loads(file.read_text())
        if report["model"] == checkpoint and report.get("baseline"):
            return report
    raise AssertionError(f"no evaluation report of {checkpoint} under {home / 'evals'}")
