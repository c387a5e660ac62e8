"""Evaluation tasks: score a model on benchmarks, publish the report as artifacts, log it to MLflow."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from mm15 import paths
from mm15.atomic import write_text_atomic
from mm15.eval.benchmarks import load_benchmarks
from mm15.eval.generate import load_model
from mm15.eval.report import read_result, track, write_report
from mm15.eval.runner import EvalResult, default_out, evaluate

TRACKED = "tracked.json"  # beside a report: the MLflow run it was logged to, and against which baseline


@task(name="evaluate-model")
def evaluate_model(
    model: str,
    benchmarks: list[str] | None,
    limit: int | None,
    batch_size: int,
    baseline: str | None,
    snapshot: int | None,
    home: str | None = None,
    reuse: bool = False,
) -> dict:
    """Score `model` (and `baseline`) on the benchmarks; the report's JSON summary and file paths.
    With `reuse`, a model already scored on the same question (benchmarks, limit, snapshot) is not scored
    again: for checkpoints of run folders, which are named by their inputs, and preset weights."""
    configs = load_benchmarks(benchmarks)
    root = Path(home) if home else paths.home()
    result, base = (
        _scored(spec, configs, limit, batch_size, snapshot, root, reuse and not spec.startswith("models:/"))
        for spec in (model, baseline)
    )
    folder = default_out(model, [b.name for b in configs], limit, snapshot, root)
    reports = write_report(result, folder, base)
    tracked = folder / TRACKED
    if tracked.is_file() and json.loads(tracked.read_text())["baseline"] == baseline:
        run_id = json.loads(tracked.read_text())["run_id"]  # this very report is already in MLflow
    else:
        run_id = track(result, reports, base)
        write_text_atomic(tracked, json.dumps({"baseline": baseline, "run_id": run_id}))
    summary = json.loads(reports["json"].read_text())
    return summary | {"paths": {k: str(v) for k, v in reports.items()}, "mlflow_run_id": run_id}


def _scored(spec, configs, limit, batch_size, snapshot, root: Path, reuse: bool) -> EvalResult | None:
    """The evaluation of `spec` (None for no model): read back when `reuse` finds it, else run and kept."""
    if spec is None:
        return None
    folder = default_out(spec, [b.name for b in configs], limit, snapshot, root)
    if reuse and (found := read_result(folder)) is not None:
        get_run_logger().info("%s: already scored in %s", spec, folder)
        return found
    result = evaluate(load_model(spec), configs, paths.catalog_dir(root), snapshot, limit, batch_size)
    (folder / TRACKED).unlink(missing_ok=True)  # new scores: the next report is logged again
    write_report(result, folder)
    return result


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
