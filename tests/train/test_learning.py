"""The tiny model really learns: CPT then SFT bring the held-out loss of every category they train on
well below the untrained model's (held-out: each category's eval split, never trained on)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mm15.mixture.spec import load_spec

pytestmark = pytest.mark.slow
WELL_BELOW = 0.6  # held-out loss after training / before: the mean over categories, at most
EVERY_CATEGORY = 0.85  # the same ratio for each category: code (reading code off an image) learns slowest


def _train(home, out, stage, *extra):
    command = [
        sys.executable,
        "-m",
        "mm15.cli",
        "train",
        "--stage",
        stage,
        "--preset",
        "tiny",
        "--out",
        str(out),
        "--heldout",
        "8",
        "--no-track",
        *extra,
    ]
    done = subprocess.run(
        command, env={**os.environ, "MM15_HOME": str(home)}, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "run.json").read_text())


def test_cpt_then_sft_lower_the_heldout_loss_of_every_trained_category(train_home, tmp_path):
    cpt = _train(train_home, tmp_path / "cpt", "cpt", "--max-steps", "15")
    sft = _train(train_home, tmp_path / "sft", "sft", "--max-steps", "60", "--init", cpt["last_checkpoint"])
    untrained = cpt["heldout_before"]
    assert set(untrained) == set(sft["heldout_after"])  # every category of the catalog is scored

    assert cpt["heldout_after"]["ocr"] < WELL_BELOW * untrained["ocr"]
    sft_categories = {c.category for c in load_spec("all").components}
    assert len(sft_categories) == 8
    ratios = {c: sft["heldout_after"][c] / untrained[c] for c in sft_categories}
    assert all(r < EVERY_CATEGORY for r in ratios.values()), ratios
    assert sum(ratios.values()) / len(ratios) < WELL_BELOW, ratios
