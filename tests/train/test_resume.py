"""`mm15 train` as a user runs it: the run folder, and exact resumption after SIGTERM and SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from mm15.train.metrics import read_metrics

pytestmark = pytest.mark.slow
STEPS = 8
TRAIN = [
    "train",
    "--stage",
    "sft",
    "--preset",
    "tiny",
    "--max-steps",
    str(STEPS),
    "--save-every",
    "2",
]


def _env(home: Path, tracking: str = "") -> dict[str, str]:
    return {**os.environ, "MM15_HOME": str(home), "OMP_NUM_THREADS": "2", "MLFLOW_TRACKING_URI": tracking}


def _train(home: Path, out: Path, *extra: str, tracking: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mm15.cli", *TRAIN, "--out", str(out), *extra],
        env=_env(home, tracking),
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def uninterrupted(train_home, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("uninterrupted")
    done = _train(train_home, out, tracking=f"sqlite:///{out / 'mlflow.db'}")
    assert done.returncode == 0, done.stderr
    return out


def test_run_folder_holds_checkpoints_metrics_and_summary(uninterrupted):
    names = sorted(p.name for p in uninterrupted.iterdir())
    assert [n for n in names if n.startswith("checkpoint-")] == [
        "checkpoint-4",
        "checkpoint-6",
        "checkpoint-8",
    ]
    assert {"metrics.jsonl", "run.json", "loss.png"} <= set(names)
    checkpoint = uninterrupted / "checkpoint-8"
    assert {"model.safetensors", "config.json", "training_state.pt"} <= {p.name for p in checkpoint.iterdir()}
    metrics = read_metrics(uninterrupted / "metrics.jsonl")
    assert [m["step"] for m in metrics] == list(range(1, STEPS + 1))
    for key in (
        "loss",
        "lr",
        "grad_norm",
        "tokens_per_s",
        "tiles_per_s",
        "data_wait",
        "packing_efficiency",
        "peak_memory_mb",
    ):
        assert all(isinstance(m[key], float) for m in metrics), key
    assert metrics[-1]["loss"] < metrics[0]["loss"]
    run = json.loads((uninterrupted / "run.json").read_text())
    assert run["status"] == "finished" and run["step"] == STEPS and run["catalog_snapshot"] >= 1
    assert run["packing_efficiency"] >= 0.9


def _interrupt(home: Path, out: Path, sig: signal.Signals) -> int:
    """Start a run, send `sig` once three steps are logged; return the exit code."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mm15.cli", *TRAIN, "--out", str(out), "--no-track"],
        env=_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    metrics = out / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    process.send_signal(sig)
    return process.wait(timeout=300)


def _same_run(a: Path, b: Path) -> None:
    assert [m["loss"] for m in read_metrics(a / "metrics.jsonl")] == [
        m["loss"] for m in read_metrics(b / "metrics.jsonl")
    ]
    wa, wb = (
        load_file(a / f"checkpoint-{STEPS}" / "model.safetensors"),
        load_file(b / f"checkpoint-{STEPS}" / "model.safetensors"),
    )
    assert wa.keys() == wb.keys()
    assert all((wa[k] == wb[k]).all() for k in wa)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_resume_repeats_the_uninterrupted_run(train_home, uninterrupted, tmp_path, sig):
    out = tmp_path / "run"
    code = _interrupt(train_home, out, sig)
    saved = sorted(int(p.name.split("-")[1]) for p in out.glob("checkpoint-*"))
    if sig == signal.SIGTERM:
        assert code == 143
        assert saved and saved[-1] >= 3  # the step in flight finished and saved
    else:
        assert code == -signal.SIGKILL
    resumed = _train(train_home, out, "--resume", "--no-track")
    assert resumed.returncode == 0, resumed.stderr
    _same_run(uninterrupted, out)


def test_the_run_is_tracked_in_mlflow(uninterrupted, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{uninterrupted / 'mlflow.db'}")
    from mm15.tracking import client

    run_id = json.loads((uninterrupted / "run.json").read_text())["mlflow_run_id"]
    mlflow = client()
    run = mlflow.get_run(run_id)
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["preset"] == "tiny" and params["stage"] == "sft" and params["optimizer"] == "adamw"
    assert len(params["manifest_hash"]) == 64 and int(params["catalog_snapshot"]) >= 1
    assert params["git_commit"]
    losses = mlflow.get_metric_history(run_id, "loss")
    assert sorted(m.step for m in losses) == list(range(1, STEPS + 1))
    assert {"tokens_per_s", "grad_norm", "packing_efficiency"} <= set(run.data.metrics)
    assert "loss.png" in {a.path for a in mlflow.list_artifacts(run_id)}
    assert run.info.artifact_uri.startswith((uninterrupted / "mlartifacts").as_uri())  # beside the store
