"""The pipeline's stages are cached by their inputs: a rerun with nothing changed trains, scores and
registers nothing; a changed mixture file reruns from its manifest on. (Overlapping runs: the integration
test in test_pipeline.py.)

A small catalog (the tiny preset's sources at a few dozen samples each) and a few training steps: what is
checked here is what reruns, not what the model learns (test_pipeline.py checks that).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from mm15 import paths

pytestmark = [pytest.mark.flow, pytest.mark.slow]


@pytest.fixture
def small_catalogs(tmp_path, monkeypatch) -> Path:
    """The project's catalogs/ with the tiny preset's synthetic sources cut to 24 train + 6 eval samples."""
    folder = tmp_path / "catalogs"
    shutil.copytree(paths.PROJECT_ROOT / "catalogs", folder)
    synthetic = yaml.safe_load((folder / "synthetic.yaml").read_text())
    tiny = synthetic["presets"]["tiny"]
    tiny["sources"] = {name: {"train": 24, "eval": 6} for name in tiny["sources"]}
    (folder / "synthetic.yaml").write_text(yaml.safe_dump(synthetic))
    monkeypatch.setenv("MM15_CATALOGS", str(folder))
    return folder


def test_a_rerun_goes_straight_through_and_a_changed_mixture_reruns_from_its_manifest(
    prefect_api, small_catalogs, home, monkeypatch
):
    from prefect import get_client

    from flows.pipeline import pipeline
    from mm15.tracking import client

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    def run() -> dict:
        return pipeline(
            preset="tiny",
            mixtures={"cpt": 128, "all": 256},
            cpt_steps=2,
            sft_steps=3,
            heldout=0,
            benchmarks=["general"],
            eval_limit=2,
            home=str(home),
        )

    def versions() -> list[int]:
        return sorted(int(v.version) for v in client().search_model_versions("name = 'mm15-tiny'"))

    first = run()
    cpt, tuned = first["cpt"], first["sft"]
    assert cpt["step"] == 2 and tuned["step"] == 3
    assert (
        tuned["init"] == cpt["last_checkpoint"]
        and Path(cpt["last_checkpoint"]).parent.parent == home / "runs"
    )
    assert tuned["stage_config"]["split"] == "dynamic" and cpt["stage_config"]["split"] == "static"
    assert first["model"]["version"] == 1 and first["model"]["decision"]["promoted"] is True
    with get_client(sync_client=True) as prefect:
        assert prefect.read_global_concurrency_limit_by_name("gpu").limit >= 1
        assert prefect.read_global_concurrency_limit_by_name("registry").limit == 1

    # A rerun with nothing changed goes straight through: no training, no new scores, no new version.
    logs = {p: p.stat().st_mtime_ns for p in (home / "runs").glob("*/trainer.log")}
    tracked = {p: p.stat().st_mtime_ns for p in (home / "evals").glob("*/tracked.json")}
    again = run()
    assert again["catalog"]["committed"] is False
    assert again["cpt"] == cpt and again["sft"] == tuned and again["model"]["version"] == 1
    assert {p: p.stat().st_mtime_ns for p in (home / "runs").glob("*/trainer.log")} == logs
    assert {p: p.stat().st_mtime_ns for p in (home / "evals").glob("*/tracked.json")} == tracked
    assert again["model"]["decision"]["promoted"] is True  # the recorded decision of version 1
    assert versions() == [1]

    # A changed SFT mixture reruns from its manifest on: CPT is reused, SFT trains, a version is added.
    spec = yaml.safe_load((small_catalogs / "mixtures" / "all.yaml").read_text())
    spec["groups"]["single_image"]["alpha"]["refer_ground"] = 1.0
    (small_catalogs / "mixtures" / "all.yaml").write_text(yaml.safe_dump(spec))
    changed = run()
    assert changed["cpt"] == cpt
    assert changed["manifests"]["all"]["manifest_hash"] != again["manifests"]["all"]["manifest_hash"]
    assert changed["sft"]["last_checkpoint"] != tuned["last_checkpoint"]
    assert changed["model"]["version"] == 2 and versions() == [1, 2]
