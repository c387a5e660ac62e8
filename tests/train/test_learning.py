"""The tiny model really learns: CPT then SFT bring the held-out loss of every category they train on
well below the untrained model's (held-out: each category's eval split, never trained on)."""

from __future__ import annotations

import pytest

from mm15.mixture.spec import load_spec

pytestmark = pytest.mark.slow
WELL_BELOW = 0.6  # held-out loss after training / before: the mean over categories, at most
EVERY_CATEGORY = 0.85  # the same ratio for each category: code (reading code off an image) learns slowest


def test_cpt_then_sft_lower_the_heldout_loss_of_every_trained_category(trained_tiny):
    cpt, sft = trained_tiny["cpt"], trained_tiny["sft"]
    untrained = cpt["heldout_before"]
    assert set(untrained) == set(sft["heldout_after"])  # every category of the catalog is scored

    assert cpt["heldout_after"]["ocr"] < WELL_BELOW * untrained["ocr"]
    sft_categories = {c.category for c in load_spec("all").components}
    assert len(sft_categories) == 8
    ratios = {c: sft["heldout_after"][c] / untrained[c] for c in sft_categories}
    assert all(r < EVERY_CATEGORY for r in ratios.values()), ratios
    assert sum(ratios.values()) / len(ratios) < WELL_BELOW, ratios
