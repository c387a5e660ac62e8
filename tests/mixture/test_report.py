import dataclasses
import json
from pathlib import Path

import pytest
from PIL import Image

from mm15.mixture.report import plot_shares, render_text, summary_table, to_json
from mm15.mixture.summary import ManifestSummary, Share


def summary(science_rows: int = 100) -> ManifestSummary:
    science_drawn = 30
    return ManifestSummary(
        mixture="toy",
        snapshot=4,
        seed=2,
        samples=1000,
        batch_size=100,
        stratified=True,
        within_category="proportional",
        manifest_hash="ab" * 32,
        categories={
            "general": Share(0.2, 0.201, 201, 5000, 201, 201 / 5000),
            "text_rich": Share(0.77, 0.769, 769, 9000, 769, 769 / 9000),
            "science": Share(
                0.03, 0.03, science_drawn, science_rows, min(30, science_rows), 30 / science_rows
            ),
        },
        sources={
            "general/llava": Share(0.2, 0.201, 201, 5000, 201, 201 / 5000),
            "text_rich/docvqa": Share(0.77, 0.769, 769, 9000, 769, 769 / 9000),
            "science/ai2d": Share(
                0.03, 0.03, science_drawn, science_rows, min(30, science_rows), 30 / science_rows
            ),
        },
        max_batch_deviation=0.9,
        spec={"name": "toy"},
    )


def test_json_has_the_show_format() -> None:
    data = to_json(summary())
    assert data["snapshot"] == 4 and data["manifest_hash"] == "ab" * 32
    assert data["categories"]["text_rich"] == {
        "expected": 0.77,
        "realized": 0.769,
        "samples": 769,
        "available": 9000,
        "unique": 769,
        "repetition": 769 / 9000,
    }
    assert data["max_share_error"] == pytest.approx(0.001)
    assert json.loads(json.dumps(data)) == data
    assert ManifestSummary.from_dict(summary().to_dict()) == summary()


def test_table_is_largest_share_first_in_percent() -> None:
    rows = summary_table(summary())
    assert [r["category"] for r in rows] == ["text_rich", "general", "science"]
    assert rows[0] == {
        "category": "text_rich",
        "expected %": 77.0,
        "realized %": 76.9,
        "samples": 769,
        "available": 9000,
        "repetition": 0.09,
    }
    assert [r["source"] for r in summary_table(summary(), by="source")][0] == "text_rich/docvqa"


def test_text_names_lineage_shares_and_repetition() -> None:
    text = render_text(summary(science_rows=10))
    assert "mixture toy" in text and "snapshot 4" in text and "ab" * 32 in text
    line = next(line for line in text.splitlines() if line.startswith("text_rich "))
    assert line.split() == ["text_rich", "77.00", "76.90", "769", "9,000", "0.09"]
    assert text.endswith(
        "sampled with replacement (too few rows for the share):\n  science: 30 draws of 10 rows (x3.00)\n"
    )
    assert "sampled with replacement" not in render_text(summary(science_rows=100))


def test_text_names_sources_repeated_inside_a_category_that_is_not() -> None:
    base = summary()
    llava = dataclasses.replace(base.sources["general/llava"], available=100, repetition=2.01)
    text = render_text(dataclasses.replace(base, sources={**base.sources, "general/llava": llava}))
    assert "  general/llava: 201 draws of 100 rows (x2.01)" in text
    assert "  general:" not in text


def test_chart_is_a_png(tmp_path: Path) -> None:
    path = plot_shares(summary(), tmp_path / "charts" / "shares.png")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width >= 800 and image.height == 800
    again = plot_shares(summary(), tmp_path / "again.png")
    assert again.read_bytes() == path.read_bytes()
