from pathlib import Path

import pytest

from mm15.mixture.spec import (
    check_against_catalog,
    component_shares,
    expected_shares,
    load_spec,
    spec_from_dict,
    spec_to_dict,
)
from tests.mixture.fixtures import MIXTURES, REALISTIC, RECIPE_ALL, connect, write_catalog

GOOD = """
name: good
batch_size: 8
groups:
  single_image: {weight: 0.9, alpha: {general: 1.0, math: 0.5}}
  text_only: {weight: 0.1, alpha: {text_only: 1}}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["all", "base", "single_image", "cpt"])
def test_shipped_specs_load_and_round_trip(name: str) -> None:
    spec = load_spec(name, MIXTURES)
    assert spec.name == name
    assert spec_from_dict(spec_to_dict(spec)) == spec
    assert sum(component_shares(spec).values()) == pytest.approx(1.0)


def test_all_has_the_recipe_shares() -> None:
    shares = expected_shares(load_spec("all", MIXTURES))
    assert set(shares) == set(RECIPE_ALL)
    for category, percent in RECIPE_ALL.items():
        assert 100 * shares[category] == pytest.approx(percent, abs=0.06)
    assert 100 * shares["text_rich"] == pytest.approx(37.18, abs=0.005)
    assert 100 * shares["science"] == pytest.approx(1.13, abs=0.005)


def test_base_and_single_image_categories() -> None:
    base = expected_shares(load_spec("base", MIXTURES))
    single = expected_shares(load_spec("single_image", MIXTURES))
    assert set(base) == {"general", "text_rich", "science", "math", "code"}
    assert set(single) == set(base) | {"refer_ground"}
    # alpha is relative to general: refer_ground : general = 2 : 1
    assert single["refer_ground"] / single["general"] == pytest.approx(2.0)


def test_cpt_gives_each_ocr_source_a_quarter() -> None:
    spec = load_spec("cpt", MIXTURES)
    assert component_shares(spec) == {f"ocr/{s}": 0.25 for s in ("pdfa", "idl", "renderedtext", "docstruct")}
    assert spec.batch_size % 4 == 0 and spec.stratified


def test_a_good_spec_loads_from_a_path(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, GOOD))
    assert expected_shares(spec) == pytest.approx({"general": 0.6, "math": 0.3, "text_only": 0.1})
    assert spec.batch_size == 8 and spec.within_category == "proportional"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD.replace("math:", "maths:"), "unknown category 'maths'"),
        (
            GOOD.replace("math: 0.5", "math: -0.5"),
            "groups.single_image.alpha.math: input should be greater than or equal to 0",
        ),
        (
            GOOD.replace("weight: 0.1", "weight: -0.1").replace("0.9", "1.1"),
            "groups.text_only.weight: input should be greater than or equal to 0",
        ),
        (GOOD + "  extra: [", "malformed YAML"),
        (GOOD + "batchsize: 3\n", "batchsize: unknown field"),
        (GOOD.replace("{weight: 0.1,", "{wieght: 0.1,"), "groups.text_only.wieght: unknown field"),
        (GOOD + "batch_size: 4\n", "duplicate key 'batch_size'"),
        (GOOD.replace("0.9", "0.8"), "group weights must sum to 1, got 0.9"),
        (
            GOOD + "within_category: random\n",
            "within_category: input should be 'proportional', 'uniform' or 'temperature'",
        ),
        (GOOD + "temperature: 2.0\n", "`temperature` is only used with within_category: temperature"),
        (GOOD + "within_category: temperature\n", "needs `temperature` > 0"),
        (GOOD.replace("text_only: 1", "general: 1"), "category 'general' appears in groups single_image and"),
        (
            GOOD.replace("batch_size: 8", "batch_size: 0"),
            "batch_size: input should be greater than or equal to 1",
        ),
        (
            GOOD.replace("batch_size: 8", "batch_size: many"),
            "batch_size: input should be a valid integer, got 'many'",
        ),
        (GOOD.replace("math: 0.5", "math: yes"), "alpha.math: input should be a valid number, got True"),
        (GOOD.replace("name: good", "name: ../evil"), "bad name"),
        (
            GOOD.replace("{weight: 0.1, alpha: {text_only: 1}}", "{weight: 0.1, sources: {openorca: 1}}"),
            "needs the",
        ),
        (GOOD.replace("alpha: {text_only: 1}", "alpha: {text_only: 1}, sources: {x: 1}"), "either `alpha`"),
        (GOOD.replace("alpha: {text_only: 1}", "alpha: {text_only: 0}"), "all its alphas are 0"),
        ("- just\n- a list\n", "a mixture spec is a mapping"),
        ("name: empty\ngroups: {}\n", "groups: expected a non-empty mapping"),
    ],
)
def test_bad_specs_fail_with_one_clear_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match="^.*$") as err:
        load_spec(path)
    assert message in str(err.value)
    assert str(err.value).startswith(str(path))
    assert "\n" not in str(err.value)


def test_unknown_name_lists_the_known_specs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no mixture 'nope' .*known: all, base, cpt, single_image"):
        load_spec("nope", MIXTURES)


def test_catalog_check_names_missing_categories_and_sources(tmp_path: Path) -> None:
    sizes = {k: 5 for k in REALISTIC if k not in {("refer_ground", "grit"), ("ocr", "docstruct")}}
    con = connect(write_catalog(tmp_path / "c.parquet", sizes))
    with pytest.raises(ValueError, match="category 'refer_ground' has no train samples"):
        check_against_catalog(load_spec("all", MIXTURES), con)
    with pytest.raises(ValueError, match="no source 'docstruct'.*has: idl, pdfa, renderedtext"):
        check_against_catalog(load_spec("cpt", MIXTURES), con)
    check_against_catalog(load_spec("base", MIXTURES), con)  # base needs no refer_ground


def test_catalog_check_ignores_eval_rows_and_zero_shares(tmp_path: Path) -> None:
    con = connect(write_catalog(tmp_path / "c.parquet", {("general", "llava"): 0}, eval_rows=5))
    spec = spec_from_dict({"name": "g", "groups": {"g": {"alpha": {"general": 1}}}})
    with pytest.raises(ValueError, match="category 'general' has no train samples"):
        check_against_catalog(spec, con)
    zero = spec_from_dict(
        {
            "name": "z",
            "groups": {"a": {"weight": 1, "alpha": {"general": 1}}, "b": {"weight": 0, "alpha": {"code": 1}}},
        }
    )
    con = connect(write_catalog(tmp_path / "d.parquet", {("general", "llava"): 3}))
    check_against_catalog(zero, con)  # code has share 0: not needed
