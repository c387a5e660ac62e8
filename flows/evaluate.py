"""Evaluation: score a checkpoint (or a registered model) on the benchmarks; never rebuilds catalogs.

evaluate (batched greedy decoding, per-sample scores, categories, MMBase) -> report artifacts + MLflow run
"""

from __future__ import annotations

from prefect import flow

from tasks.evaluate import evaluate_model, publish_report


@flow(name="evaluate")
def evaluate(
    model: str,
    benchmarks: list[str] | None = None,
    limit: int | None = None,
    batch_size: int = 8,
    baseline: str | None = None,
    snapshot: int | None = None,
) -> dict:
    """Score MODEL (a checkpoint folder, models:/NAME@ALIAS, or preset:NAME) and, if given, BASELINE."""
    summary = evaluate_model(model, benchmarks, limit, batch_size, baseline, snapshot)
    publish_report(summary)
    return summary
