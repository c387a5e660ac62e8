from pathlib import Path

import pytest

from mm15.mixture.build import build_manifest
from mm15.mixture.spec import component_shares, expected_shares, load_spec
from mm15.mixture.sweep import sweep_specs, write_spec, write_sweep
from tests.mixture.fixtures import MIXTURES

ALL = load_spec("all", MIXTURES)


def test_alpha_sweep_changes_one_alpha() -> None:
    variants = sweep_specs(ALL, category="science", alphas=[0.05, 0.2, 1])
    assert [v.name for v in variants] == [
        "all-science-alpha0.05",
        "all-science-alpha0.2",
        "all-science-alpha1",
    ]
    for variant, alpha in zip(variants, [0.05, 0.2, 1.0], strict=True):
        alphas = {c.key: c.alpha for c in variant.components}
        assert alphas == {**{c.key: c.alpha for c in ALL.components}, "science": alpha}
        assert [g.weight for g in variant.groups] == [0.8, 0.1, 0.1]
    shares = [expected_shares(v)["science"] for v in variants]
    assert shares == sorted(shares) and shares[1] == pytest.approx(0.8 * 0.2 / 7.2)


def test_group_weight_sweep_rescales_the_others() -> None:
    variants = sweep_specs(ALL, group="multi_image", weights=[0.0, 0.2])
    assert [v.name for v in variants] == ["all-multi_image-w0", "all-multi_image-w0.2"]
    for variant, weight in zip(variants, [0.0, 0.2], strict=True):
        weights = {g.name: g.weight for g in variant.groups}
        assert weights["multi_image"] == weight
        assert weights["single_image"] / weights["text_only"] == pytest.approx(8.0)
        assert sum(weights.values()) == pytest.approx(1.0)
    assert expected_shares(variants[1])["multi_image"] == pytest.approx(0.2)


def test_both_sweeps_and_source_components() -> None:
    variants = sweep_specs(ALL, category="math", alphas=[1], group="text_only", weights=[0.2])
    assert [v.name for v in variants] == ["all-math-alpha1", "all-text_only-w0.2"]
    cpt = sweep_specs(load_spec("cpt", MIXTURES), category="ocr/pdfa", alphas=[2])[0]
    assert cpt.name == "cpt-ocr-pdfa-alpha2"
    assert component_shares(cpt)["ocr/pdfa"] == pytest.approx(0.4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"category": "maths", "alphas": [1]}, "has no component 'maths'"),
        ({"group": "video", "weights": [0.1]}, "has no group 'video'"),
        ({"group": "text_only", "weights": [1.5]}, r"in \[0, 1\]"),
        ({"category": "math", "alphas": [-1]}, "alpha.math: input should be greater than or equal to 0"),
        ({"category": "math", "alphas": []}, "no alphas"),
        ({"category": "math", "alphas": [1, 1]}, "repeated value"),
        ({}, "needs a category"),
    ],
)
def test_bad_sweeps(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sweep_specs(ALL, **kwargs)


def test_variants_are_written_loaded_and_built(catalog, tmp_path: Path) -> None:
    variants = sweep_specs(ALL, category="science", alphas=[0.4], group="multi_image", weights=[0.3])
    paths = write_sweep(variants, tmp_path / "mixtures")
    assert [p.name for p in paths] == ["all-science-alpha0.4.yaml", "all-multi_image-w0.3.yaml"]
    for variant in variants:
        loaded = load_spec(variant.name, tmp_path / "mixtures")
        assert loaded == variant
        out = tmp_path / f"{variant.name}.parquet"
        summary = build_manifest(catalog, loaded, samples=1024, seed=0, snapshot=1, out=out)
        for category, expected in expected_shares(variant).items():
            assert summary.categories[category].realized == pytest.approx(expected, abs=1 / 1024)
    assert write_spec(ALL, tmp_path / "copy.yaml").read_text().startswith("# Mixture spec")
    assert load_spec(tmp_path / "copy.yaml") == ALL
