"""Ablation study: the paper's data choices at toy scale, each finding tested against seed noise.

run the study (every arm x seed: manifest -> CPT when asked -> SFT -> evaluation, cached by inputs, as many
at a time as there are cores) -> the findings table and chart as artifacts, an MLflow parent run
"""

from __future__ import annotations

from prefect import flow

from mm15 import paths
from tasks.ablate import publish_study, run_study_task


@flow(name="ablate")
def ablate(
    study: str,
    seeds: int = 2,
    preset: str | None = None,
    jobs: int | None = None,
    track: bool = True,
    home: str | None = None,
) -> dict:
    """Run STUDY (a built-in name or a study file) on SEEDS seeds with the study's preset (or PRESET)."""
    home = str(paths.use_home(home))
    result = run_study_task(study, seeds, preset, home, jobs, track)
    publish_study(result)
    return result
