"""Evaluation end to end on a tiny checkpoint trained in this session: batch-size invariance, `mm15 eval`
as a user runs it (JSON on stdout, predictions, report, MLflow), and learning visible in the scores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mm15.eval.benchmarks import load_benchmarks
from mm15.eval.generate import load_model
from mm15.eval.report import markdown
from mm15.eval.runner import EvalResult, evaluate

pytestmark = pytest.mark.slow
CATEGORIES = ("general", "text_rich", "knowledge", "refer_ground", "multi_image", "in_context", "ocr")


@pytest.fixture(scope="module")
def checkpoint(trained_tiny) -> str:
    return trained_tiny["sft"]["last_checkpoint"]


def test_predictions_and_scores_do_not_depend_on_the_batch_size(checkpoint, train_home, monkeypatch):
    monkeypatch.setenv("MM15_HOME", str(train_home))
    loaded = load_model(checkpoint, "cpu")
    configs = load_benchmarks(["general", "refer_ground", "multi_image", "in_context"])
    runs = {size: evaluate(loaded, configs, None, None, limit=6, batch_size=size) for size in (1, 3, 8)}
    reference = [(p["sample_id"], p["prediction"], p["score"]) for p in runs[1].predictions]
    assert len(reference) == 24
    for size in (3, 8):
        assert [(p["sample_id"], p["prediction"], p["score"]) for p in runs[size].predictions] == reference
        assert runs[size].benchmarks == runs[1].benchmarks


def _eval(home: Path, *args: str, tracking: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MM15_HOME": str(home), "MLFLOW_TRACKING_URI": tracking}
    return subprocess.run(
        [sys.executable, "-m", "mm15.cli", "eval", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_cli_prints_json_only_and_keeps_predictions_report_and_mlflow_run(checkpoint, train_home, tmp_path):
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    predictions = tmp_path / "preds.jsonl"
    done = _eval(
        train_home,
        "--model",
        checkpoint,
        "--benchmarks",
        "general,science,math,code,text_rich",
        "--limit",
        "4",
        "--batch-size",
        "3",
        "--json",
        "--predictions",
        str(predictions),
        "--out",
        str(tmp_path / "report"),
        tracking=tracking,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)  # stdout holds the JSON and nothing else
    assert set(report) == {"benchmarks", "categories", "mmbase"}
    assert set(report["benchmarks"]) == {"general", "science", "math", "code", "text_rich"}
    assert set(report["categories"]) == {"general", "knowledge", "text_rich"}
    knowledge = (
        report["benchmarks"]["science"] + report["benchmarks"]["math"] + report["benchmarks"]["code"]
    ) / 3
    assert report["categories"]["knowledge"] == pytest.approx(knowledge, abs=0.01)
    assert report["mmbase"] == pytest.approx(sum(report["categories"].values()) / 3, abs=0.01)
    assert all(0 <= v <= 100 for v in report["benchmarks"].values())

    lines = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert len(lines) == 20
    assert all(
        set(p) == {"benchmark", "sample_id", "prompt", "prediction", "references", "score"} for p in lines
    )
    assert all(0.0 <= p["score"] <= 1.0 for p in lines)
    general = [p["score"] for p in lines if p["benchmark"] == "general"]
    assert report["benchmarks"]["general"] == pytest.approx(100 * sum(general) / 4, abs=0.01)
    assert {"report.md", "report.json", "scores.png"} <= {p.name for p in (tmp_path / "report").iterdir()}

    os.environ["MLFLOW_TRACKING_URI"] = tracking
    try:
        from mm15.tracking import client

        mlflow = client()
        runs = mlflow.search_runs([mlflow.get_experiment_by_name("mm15-eval").experiment_id])
        metrics = runs[0].data.metrics
    finally:
        del os.environ["MLFLOW_TRACKING_URI"]
    assert metrics["eval/general"] == report["benchmarks"]["general"]
    assert metrics["eval/category/knowledge"] == report["categories"]["knowledge"]
    assert metrics["eval/mmbase"] == report["mmbase"]


def test_unknown_benchmark_or_model_is_one_line(train_home, tmp_path):
    done = _eval(train_home, "--model", "preset:tiny", "--benchmarks", "nope", tracking="")
    assert (
        done.returncode == 2 and done.stderr.startswith("error: no benchmark 'nope'") or "nope" in done.stderr
    )
    assert len(done.stderr.strip().splitlines()) == 1
    done = _eval(train_home, "--model", str(tmp_path), tracking="")
    assert done.returncode == 2 and "not a model folder" in done.stderr


def test_markdown_reports_deltas_against_the_baseline():
    trained = EvalResult("trained", {"general": 40.0}, {"general": 40.0}, None, {"general": 10}, {})
    untrained = EvalResult("untrained", {"general": 10.0}, {"general": 10.0}, None, {"general": 10}, {})
    text = markdown(trained, untrained)
    assert "| category general | 40.00 | 10.00 | +30.00 |" in text
    assert "| **MMBase** | n/a | n/a |  |" in text


def test_a_benchmark_file_a_user_brings_reports_its_malformed_rows(train_home, tmp_path):
    example = Path(__file__).resolve().parents[2] / "examples" / "benchmark-vqa" / "shapes.yaml"
    done = _eval(
        train_home,
        "--model",
        "preset:tiny",
        "--benchmarks",
        str(example),
        "--json",
        "--out",
        str(tmp_path),
        tracking="",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["benchmarks"] == {"shapes": 0.0}
    assert "shapes: 2 malformed rows not scored" in done.stderr
    assert json.loads((tmp_path / "report.json").read_text())["malformed"] == {"shapes": 2}
