"""The model card: data (mixtures, hashes, realised shares), training stages, scores against the
untrained baseline, intended use and limits, lineage."""

from __future__ import annotations

from mm15.mixture.summary import ManifestSummary, Share, write_summary
from mm15.registry import model_card

SCORES = {"categories": {"general": 31.5, "text_rich": 12.25, "knowledge": 8.0}, "mmbase": 17.25}
BASELINE = {"categories": {"general": 1.0, "text_rich": 0.5, "knowledge": 0.0}, "mmbase": 0.5}


def summary(mixture: str, hash_: str) -> ManifestSummary:
    share = Share(expected=0.5, realized=0.4875, samples=39, available=60, unique=39, repetition=0.65)
    other = Share(expected=0.5, realized=0.5125, samples=41, available=20, unique=20, repetition=2.05)
    return ManifestSummary(
        mixture=mixture,
        snapshot=3,
        seed=0,
        samples=80,
        batch_size=8,
        stratified=True,
        within_category="proportional",
        manifest_hash=hash_,
        categories={"general": share, "text_rich": other},
        sources={},
        max_batch_deviation=0.5,
        spec={},
    )


def run_json(stage: str, mixture: str, hash_: str, steps: int) -> dict:
    config = {"global_batch": 16, "seq_len": 512, "optimizer": "adamw", "peak_lr": 0.002}
    return {
        "stage": stage,
        "preset": "tiny",
        "mixture": mixture,
        "manifest_hash": hash_,
        "catalog_snapshot": 3,
        "step": steps,
        "total_steps": steps,
        "status": "finished",
        "stage_config": config,
    }


def test_card_says_what_it_was_trained_on_and_how_it_scores(tmp_path):
    manifest = tmp_path / "cpt-abc.parquet"
    write_summary(summary("cpt", "abc123"), manifest.with_suffix(".json"))
    card = model_card(
        name="mm15-tiny",
        preset="tiny",
        training={"cpt": run_json("cpt", "cpt", "abc123", 15), "sft": run_json("sft", "all", "def456", 60)},
        manifests={
            "cpt": {"manifest": str(manifest), "manifest_hash": "abc123", "snapshot": 3},
            "all": {"manifest": str(tmp_path / "missing.parquet"), "manifest_hash": "def456", "snapshot": 3},
        },
        scores=SCORES,
        baseline=BASELINE,
        lineage={"mm15.catalog_snapshot": "3", "mm15.git_commit": "0123abc"},
    )
    first = card.splitlines()[0]
    assert first.startswith("# mm15-tiny") and "cpt + sft" in first and "17.25" in first
    assert "catalog snapshot 3" in card
    assert "### Mixture `cpt`" in card and "`abc123`" in card
    assert "| general | 50.0% | 48.8% | 39 | 0.65 |" in card  # expected and realised shares
    assert "| text_rich | 50.0% | 51.2% | 41 | 2.05 |" in card
    assert "### Mixture `all`" in card and "shares unknown" in card
    assert "| cpt | cpt | `abc123` | 15 / 15 | 16 | 512 | adamw | 0.002 | finished |" in card
    assert "| sft | all | `def456` | 60 / 60 |" in card
    assert "| text_rich | 12.25 | 0.50 | +11.75 |" in card
    assert "| **MMBase** | 17.25 | 0.50 | +16.75 |" in card
    for heading in ("## Intended use", "## Limits", "## Lineage"):
        assert heading in card
    assert "Not for real-world use" in card and "English only" in card
    assert "- `mm15.git_commit`: 0123abc" in card


def test_card_without_baseline_or_training():
    card = model_card(
        name="mm15-tiny", preset="tiny", training={}, manifests={}, scores=SCORES, baseline=None, lineage={}
    )
    assert "No training recorded" in card and "No mixture recorded" in card
    assert "| **MMBase** | 17.25 |" in card and "untrained baseline" not in card
