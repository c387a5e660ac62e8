"""Evaluation tasks: score a model on benchmarks, publish the report as artifacts, log it to MLflow."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from mm15.eval.benchmarks import load_benchmarks
from mm15.eval.generate import load_model
from mm15.eval.report import track, write_report
from mm15.eval.runner import default_out, evaluate


@task(name="evaluate-model")
def evaluate_model(
    model: str,
    benchmarks: list[str] | None,
    limit: int | None,
    batch_size: int,
    baseline: str | None,
    snapshot: int | None,
) -> dict:
    """Score `model` (and `baseline`) on the benchmarks; the report's JSON summary and file paths."""
    configs = load_benchmarks(benchmarks)
    results = [
        evaluate(load_model(spec), configs, None, snapshot, limit, batch_size)
        for spec in [model, *([baseline] if baseline else [])]
    ]
    result, base = results[0], (results[1] if baseline else None)
    paths = write_report(result, default_out(model, [b.name for b in configs], limit, snapshot), base)
    run_id = track(result, paths, base)
    summary = json.loads(paths["json"].read_text())
    return summary | {"paths": {k: str(v) for k, v in paths.items()}, "mlflow_run_id": run_id}


@task
def publish_report(summary: dict) -> None:
    """Artifacts: the scores as a table, and the markdown report with its chart."""
    base = summary.get("baseline") or {}
    rows = [
        {"benchmark": name, "score": value, "baseline": base.get("benchmarks", {}).get(name)}
        for name, value in summary["benchmarks"].items()
    ]
    rows += [
        {"benchmark": f"category {k}", "score": v, "baseline": base.get("categories", {}).get(k)}
        for k, v in summary["categories"].items()
    ]
    rows.append({"benchmark": "MMBase", "score": summary["mmbase"], "baseline": base.get("mmbase")})
    create_table_artifact(rows, key="evaluation-scores", description=f"scores of {summary['model']} (0-100)")
    chart = base64.b64encode(Path(summary["paths"]["chart"]).read_bytes()).decode()
    report = Path(summary["paths"]["markdown"]).read_text()
    create_markdown_artifact(f"{report}\n![scores](data:image/png;base64,{chart})\n", key="evaluation-report")
