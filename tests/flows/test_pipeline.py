"""The whole pipeline on the tiny preset, as `make run` runs it, and the acceptance figures of its mixtures."""

from __future__ import annotations

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from flows.pipeline import pipeline
from mm15.catalog import open_catalog
from mm15.eval.benchmarks import load_benchmarks
from mm15.eval.generate import load_model
from mm15.eval.runner import evaluate
from mm15.mixture import read_summary
from mm15.paths import catalog_dir

pytestmark = [pytest.mark.flow, pytest.mark.slow]

# docs/RECIPE.md section 4: final shares of the "all" SFT mixture
PAPER_SHARES = {
    "text_rich": 0.372,
    "refer_ground": 0.225,
    "general": 0.113,
    "math": 0.056,
    "code": 0.023,
    "science": 0.011,
    "multi_image": 0.10,
    "text_only": 0.10,
}


def test_tiny_pipeline_builds_catalog_mixtures_and_a_model_that_learns(prefect_api, home):
    result = pipeline(preset="tiny", home=str(home))  # what `make run` runs, training included

    with open_catalog(catalog_dir(home)) as catalog:
        counts = dict(
            catalog.query("SELECT category, count(*) FROM samples WHERE split = 'train' GROUP BY 1")[1]
        )
        evals = dict(
            catalog.query("SELECT category, count(*) FROM samples WHERE split = 'eval' GROUP BY 1")[1]
        )
        assert catalog.snapshot_id() == result["catalog"]["snapshot"]
    assert set(counts) == set(evals) == set(PAPER_SHARES) | {"caption", "ocr"}
    for a in result["catalog"]["accounting"]:
        assert a["read"] == a["kept"] + a["quarantined"] + a["duplicates"] + a["contaminated"]
        assert a["kept"] >= 0.85 * a["read"], a  # the generators' data survive validation and dedup

    all_mix = read_summary(result["manifests"]["all"]["manifest"].replace(".parquet", ".json"))
    assert all_mix.snapshot == result["catalog"]["snapshot"]
    for category, share in PAPER_SHARES.items():
        assert abs(all_mix.categories[category].realized - share) < 0.005, category

    cpt = pq.read_table(result["manifests"]["cpt"]["manifest"], columns=["batch", "source"])
    batch_size = read_summary(result["manifests"]["cpt"]["manifest"].replace(".parquet", ".json")).batch_size
    for b in range(cpt.num_rows // batch_size):
        sources = cpt.filter(pc.equal(cpt["batch"], b))["source"].to_pylist()
        assert {s: sources.count(s) for s in set(sources)} == {
            s: batch_size // 4 for s in ("pdfa", "idl", "renderedtext", "docstruct")
        }

    # CPT trains on the cpt manifest, SFT on the all manifest from CPT's last checkpoint
    assert result["cpt"]["manifest"] == result["manifests"]["cpt"]["manifest"]
    assert result["sft"]["manifest"] == result["manifests"]["all"]["manifest"]
    assert result["sft"]["init"] == result["cpt"]["last_checkpoint"]
    assert (
        result["cpt"]["catalog_snapshot"]
        == result["sft"]["catalog_snapshot"]
        == result["catalog"]["snapshot"]
    )
    assert set(result["sft"]["heldout_after"]) == set(PAPER_SHARES) | {"caption", "ocr"}

    # the tiny pipeline learns: the trained model beats the untrained one clearly in at least 4 categories
    configs = load_benchmarks(
        ["general", "text_rich", "science", "math", "code", "refer_ground", "multi_image", "in_context"]
    )
    trained, untrained = (
        evaluate(load_model(model, "cpu"), configs, None, None, limit=32, batch_size=8)
        for model in (result["sft"]["last_checkpoint"], "preset:tiny")
    )
    margins = {k: trained.categories[k] - untrained.categories.get(k, 0.0) for k in trained.categories}
    assert sum(margin >= 8.0 for margin in margins.values()) >= 4, margins
    assert trained.mmbase > untrained.mmbase
