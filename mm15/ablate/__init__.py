"""Ablation studies: the paper's data choices rerun at toy scale, each finding tested against seed noise.

study = load_study("multi-image-weight")
result = run_study(study, seeds=[0, 1])   # also MM15_HOME/ablations/<study>/result.json, chart.png
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

from mm15 import paths
from mm15.ablate.report import arms_table, chart, findings_table
from mm15.ablate.results import study_result
from mm15.ablate.runner import CellResult, run_cells
from mm15.ablate.study import Study, known_studies, load_study
from mm15.atomic import write_text_atomic

__all__ = [
    "Study",
    "known_studies",
    "load_study",
    "run_study",
    "results_dir",
    "saved_results",
    "findings_table",
]


def results_dir(study: str, home: Path | None = None) -> Path:
    return (home or paths.home()) / "ablations" / study


def run_study(
    study: Study,
    seeds: list[int],
    home: Path | None = None,
    jobs: int | None = None,
    track: bool = True,
    done: Callable[[CellResult], None] | None = None,
) -> dict:
    """Every arm on every seed (cached runs reused), the findings judged; writes result.json, chart.png
    and table.md under MM15_HOME/ablations/<study>/ and, with `track`, an MLflow parent run with a child
    run per arm and seed. Returns the result (see `mm15.ablate.results.study_result`)."""
    import json

    home = Path(home or paths.home())
    preset = next(iter(study.arms.values())).preset
    tracker = _Tracker(study, preset, seeds) if track else None
    lock = threading.Lock()

    def finished(cell: CellResult) -> None:
        with lock:
            if tracker:
                tracker.child(cell)
            if done:
                done(cell)

    start = time.monotonic()
    try:
        cells = run_cells(study, seeds, home, jobs, finished)
    except BaseException:
        if tracker:
            tracker.parent.finish("FAILED")
        raise
    result = study_result(study, preset, cells, time.monotonic() - start)
    folder = results_dir(study.name, home)
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / "result.json", json.dumps(result, indent=2))
    write_text_atomic(folder / "table.md", arms_table(result) + "\n\n" + findings_table([result]) + "\n")
    result["chart"] = str(chart(result, folder / "chart.png"))
    if tracker:
        tracker.close(result, folder)
    return result


def saved_results(studies: list[str], home: Path | None = None) -> list[dict]:
    """The latest saved result of each study that has one."""
    import json

    files = [results_dir(name, home) / "result.json" for name in studies]
    return [json.loads(f.read_text()) for f in files if f.is_file()]


class _Tracker:
    """MLflow: one parent run per study run, a child run per arm and seed (experiment `mm15-ablations`)."""

    EXPERIMENT = "mm15-ablations"

    def __init__(self, study: Study, preset: str, seeds: list[int]):
        from mm15.tracking import Run

        self.study = study
        self.parent = Run(self.EXPERIMENT, name=study.name, tags={"mm15.study": study.name})
        self.parent.log_params({"study": study.name, "preset": preset, "seeds": seeds, "file": study.path})

    def child(self, cell: CellResult) -> None:
        from dataclasses import asdict

        from mm15.tracking import Run

        tags = {"mlflow.parentRunId": self.parent.run_id, "mm15.study": self.study.name, "mm15.arm": cell.arm}
        run = Run(self.EXPERIMENT, name=f"{self.study.name}/{cell.arm}/seed{cell.seed}", tags=tags)
        plan = asdict(self.study.arms[cell.arm]) | {"mixture": self.study.arms[cell.arm].mixture.name}
        run.log_params(plan | {"arm": cell.arm, "seed": cell.seed, "checkpoint": cell.checkpoint})
        run.log_metrics(cell.categories | {"mmbase": cell.mmbase, "seconds": cell.seconds}, step=0)
        run.finish()

    def close(self, result: dict, folder: Path) -> None:
        for finding in result["findings"]:
            key = re.sub(r"[^A-Za-z0-9_.\-/]+", "_", finding["name"])[:200]
            metrics = {f"{key}.difference": finding["difference"], f"{key}.noise": finding["noise"]}
            self.parent.log_metrics(metrics | {f"{key}.holds": float(finding["holds"])}, step=0)
        self.parent.log_metrics({"seconds": result["seconds"]}, step=0)
        for name in ("result.json", "table.md", "chart.png"):
            self.parent.log_artifact(folder / name)
        self.parent.finish()
