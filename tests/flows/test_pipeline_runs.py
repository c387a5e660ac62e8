"""The pipeline's stages are cached by their inputs, and overlapping runs do not fail each other.

A small catalog (the tiny preset's sources at a few dozen samples each) and a few training steps: what is
checked here is what reruns, not what the model learns (tests/flows/test_pipeline.py checks that).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mm15 import paths

pytestmark = [pytest.mark.flow, pytest.mark.slow]

SMALL = {"cpt": 128, "all": 256}
RUN = """
import json, sys
from flows.pipeline import pipeline
result = pipeline(preset="tiny", mixtures={"cpt": 128, "all": 256}, cpt_steps=2, sft_steps=3, heldout=0,
                  benchmarks=["general"], eval_limit=2, home=sys.argv[1])
print(json.dumps({"sft": result["sft"]["last_checkpoint"], "version": result["model"]["version"]}))
"""


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


def _versions(home: Path) -> list:
    from mm15.tracking import client

    return client().search_model_versions("name = 'mm15-tiny'")


def test_overlapping_runs_then_a_rerun_and_a_changed_mixture(prefect_api, small_catalogs, home, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "MM15_WORKERS": "1"}
    # Two runs at once on one home: curation, training and registration take turns; both finish.
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", RUN, str(home)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=900) for run in runs]
    for run, (_, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, err.decode()[-3000:]
    first, second = (json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outputs)
    assert first == second  # the same inputs: one checkpoint, registered once
    assert [int(v.version) for v in _versions(home)] == [1]
    assert len(list((home / "runs").glob("sft-tiny-*"))) == 1

    from flows.pipeline import pipeline

    def run() -> dict:
        return pipeline(
            preset="tiny",
            mixtures=SMALL,
            cpt_steps=2,
            sft_steps=3,
            heldout=0,
            benchmarks=["general"],
            eval_limit=2,
            home=str(home),
        )

    # A rerun with nothing changed goes straight through: no training, no new scores, no new version.
    logs = {p: p.stat().st_mtime_ns for p in (home / "runs").glob("*/trainer.log")}
    evals = {p: p.stat().st_mtime_ns for p in (home / "evals").glob("*/tracked.json")}
    again = run()
    assert again["sft"]["last_checkpoint"] == first["sft"] and again["model"]["version"] == 1
    assert again["catalog"]["committed"] is False
    assert {p: p.stat().st_mtime_ns for p in (home / "runs").glob("*/trainer.log")} == logs
    assert {p: p.stat().st_mtime_ns for p in (home / "evals").glob("*/tracked.json")} == evals
    assert again["model"]["decision"]["promoted"] is True  # the recorded decision of version 1

    # A changed SFT mixture reruns from its manifest on: CPT is reused, SFT trains, a version is added.
    spec = yaml.safe_load((small_catalogs / "mixtures" / "all.yaml").read_text())
    spec["groups"]["single_image"]["alpha"]["refer_ground"] = 1.0
    (small_catalogs / "mixtures" / "all.yaml").write_text(yaml.safe_dump(spec))
    changed = run()
    assert changed["cpt"]["last_checkpoint"] == again["cpt"]["last_checkpoint"]
    assert changed["manifests"]["all"]["manifest_hash"] != again["manifests"]["all"]["manifest_hash"]
    assert changed["sft"]["last_checkpoint"] != again["sft"]["last_checkpoint"]
    assert changed["model"]["version"] == 2
    assert sorted(int(v.version) for v in _versions(home)) == [1, 2]
