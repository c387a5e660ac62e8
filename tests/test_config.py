"""Typed configuration: every config file error is one line naming the file and the field, exit code 2."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mm15.catalog.sources import SyntheticConfig, configured_sources, load_synthetic_config
from mm15.config import ConfigError, StrictModel, load_config, read_yaml
from mm15.paths import PROJECT_ROOT


def mm15(*args: str, catalogs: Path, home: Path) -> subprocess.CompletedProcess:
    """The command in a subprocess (tests that call it are marked slow)."""
    env = {**os.environ, "MM15_CATALOGS": str(catalogs), "MM15_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "mm15.cli", *args], capture_output=True, text=True, timeout=120, env=env
    )


@pytest.fixture
def catalogs(tmp_path) -> Path:
    folder = tmp_path / "catalogs"
    shutil.copytree(PROJECT_ROOT / "catalogs", folder)
    return folder


def assert_one_line(result: subprocess.CompletedProcess, expected: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"error: {expected}\n"


def test_shipped_configs_load():
    config = load_synthetic_config(PROJECT_ROOT / "catalogs")
    assert set(config.presets) == {"tiny", "small"}
    assert config.preset("tiny").sources["syn_general"].train == 2000
    assert configured_sources(PROJECT_ROOT / "catalogs") == []


@pytest.mark.slow
@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (
            lambda s: s.replace("alpha: {multi_image: 1.0}", "alpha: {multi_image: lots}"),
            "groups.multi_image.alpha.multi_image: input should be a valid number, got 'lots'",
        ),
        (lambda s: s.replace("batch_size: 256", "batch_size: 256\nbatchsize: 3"), "batchsize: unknown field"),
        (lambda s: s + "stratified: false\n", "malformed YAML: duplicate key 'stratified' at line"),
    ],
    ids=["string-for-number", "unknown-field", "duplicate-key"],
)
def test_a_bad_mixture_file_is_one_line_naming_file_and_field(catalogs, tmp_path, edit, problem):
    path = catalogs / "mixtures" / "all.yaml"
    path.write_text(edit(path.read_text()))
    result = mm15("mixture", "build", "all", catalogs=catalogs, home=tmp_path / "home")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"error: {path}: {problem}")


@pytest.mark.slow
def test_a_typo_in_synthetic_yaml_is_an_error_not_ignored(catalogs, tmp_path):
    path = catalogs / "synthetic.yaml"
    path.write_text(path.read_text().replace("shard_size: 250", "shard_sise: 250"))
    result = mm15("curate", "--preset", "tiny", catalogs=catalogs, home=tmp_path / "home")
    assert_one_line(result, f"{path}: shard_size: missing field (and 1 more)")
    assert not (tmp_path / "home").exists()  # refused before anything ran


@pytest.mark.slow
def test_a_bad_source_file_names_its_field(catalogs, tmp_path):
    source = catalogs / "sources" / "mine.yaml"
    source.write_text(yaml.safe_dump({"name": "mine", "format": "llava", "path": ".", "category": "generl"}))
    result = mm15("curate", "--preset", "tiny", catalogs=catalogs, home=tmp_path / "home")
    assert_one_line(
        result, f"{source}: category: unknown category 'generl': choose one of {', '.join(_categories())}"
    )


def _categories():
    from mm15.data.record import CATEGORIES

    return CATEGORIES


@pytest.mark.slow
def test_an_unknown_preset_lists_the_presets(catalogs, tmp_path):
    result = mm15("curate", "--preset", "nosuch", catalogs=catalogs, home=tmp_path / "home")
    assert_one_line(result, "unknown preset 'nosuch': choose one of tiny, small")


class Point(StrictModel):
    x: float
    y: float = 0.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x: 1\nz: 2\n", "z: unknown field"),
        ("y: 2\n", "x: missing field"),
        ("x: [1\n", "malformed YAML"),
        ("x: 1\nx: 2\n", "duplicate key 'x' at line 2, column 1"),
        (
            "x: abc\nz: 1\n",
            "x: input should be a valid number, unable to parse string as a number (and 1 more)",
        ),
    ],
)
def test_load_config_errors(tmp_path, text, message):
    path = tmp_path / "point.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path, Point)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)
    assert "\n" not in str(err.value)


def test_read_yaml_names_an_unreadable_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        read_yaml(tmp_path / "missing.yaml")


def test_synthetic_config_rejects_unknown_sources_and_splits():
    base = {"seed": 1, "shard_size": 10, "presets": {"p": {"image_size": 96, "sources": {}}}}
    SyntheticConfig.model_validate(base)
    with pytest.raises(ValueError, match="unknown synthetic source 'nope'"):
        SyntheticConfig.model_validate(
            {**base, "presets": {"p": {"image_size": 96, "sources": {"nope": {}}}}}
        )
    with pytest.raises(ValueError, match="trian"):
        SyntheticConfig.model_validate(
            {**base, "presets": {"p": {"image_size": 96, "sources": {"syn_general": {"trian": 5}}}}}
        )
