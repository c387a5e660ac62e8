"""Ablation tasks: run a study (its runs cached by their inputs, so a retry resumes), publish its tables."""

from __future__ import annotations

import base64
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from mm15.ablate import load_study, run_study
from mm15.ablate.report import arms_table, findings_table


@task(name="run-study", retries=1, retry_delay_seconds=5)
def run_study_task(
    study: str, seeds: int, preset: str | None, home: str, jobs: int | None, track: bool
) -> dict:
    """Every arm of `study` on `seeds` seeds, findings judged (a retry reuses every finished run)."""
    logger = get_run_logger()
    loaded = load_study(study, preset)

    def done(cell) -> None:
        took = f"{cell.seconds:.0f} s" if cell.seconds else "cached"
        logger.info("%s seed %d: MMBase %s (%s)", cell.arm, cell.seed, cell.mmbase, took)

    return run_study(loaded, list(range(seeds)), Path(home), jobs, track, done)


@task
def publish_study(result: dict) -> None:
    """Artifacts: the findings as a table; the arms' scores and the chart as markdown."""
    rows = [
        {k: f[k] for k in ("name", "metric", "expect", "difference", "noise", "holds")}
        for f in result["findings"]
    ]
    key = f"ablation-{result['study']}".lower()
    create_table_artifact(rows, key=key, description=f"findings of {result['study']} (points, 0-100 scale)")
    chart = base64.b64encode(Path(result["chart"]).read_bytes()).decode()
    text = f"{arms_table(result)}\n\n{findings_table([result])}\n\n![chart](data:image/png;base64,{chart})\n"
    create_markdown_artifact(text, key=f"{key}-report")
