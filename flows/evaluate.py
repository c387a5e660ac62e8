"""Evaluation: score a checkpoint (or a registered model) on the benchmarks; never rebuilds catalogs.

evaluate (batched greedy decoding, per-sample scores, categories, MMBase) -> report artifacts + MLflow run
"""

from __future__ import annotations

from prefect import flow

from mm15 import paths
from tasks.evaluate import evaluate_model, publish_report


@flow(name="evaluate")
def evaluate(
    model: str,
    benchmarks: list[str] | None = None,
    limit: int | None = None,
    batch_size: int = 8,
    baseline: str | None = None,
    snapshot: int | None = None,
    home: str | None = None,
    reuse: bool = False,
) -> dict:
    """Score MODEL (a checkpoint folder, models:/NAME@ALIAS, or preset:NAME) and, if given, BASELINE, on
    the catalog of HOME (default MM15_HOME). With REUSE, a checkpoint or preset already scored on the same
    benchmarks, limit and snapshot is read back instead of scored again."""
    home = str(paths.use_home(home))
    summary = evaluate_model(model, benchmarks, limit, batch_size, baseline, snapshot, home, reuse)
    publish_report(summary)
    return summary
