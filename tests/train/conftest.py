"""A small real catalog with every category and the cpt / all manifests over it, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from mm15.catalog import open_catalog
from mm15.catalog.commit import commit_shards
from mm15.catalog.staging import ShardSpec, stage_shard
from mm15.data.synthetic import SYNTHETIC_SOURCES
from mm15.mixture.store import build_named

TRAIN, EVAL = 32, 8


@pytest.fixture(scope="session")
def train_home(tmp_path_factory) -> Path:
    """MM15_HOME with a catalog of every synthetic source (TRAIN + EVAL samples each) and manifests of
    the `cpt` (128 positions) and `all` (256 positions) mixtures."""
    home = tmp_path_factory.mktemp("train-home")
    staging, catalog_dir = home / "staging", home / "catalog"
    specs = [
        ShardSpec(source=source, split=split, category=category, start=0, count=n, seed=11, image_size=96)
        for source, category in SYNTHETIC_SOURCES.items()
        for split, n in (("train", TRAIN), ("eval", EVAL))
    ]
    for spec in specs:
        stage_shard(spec, staging)
    with open_catalog(catalog_dir, read_only=False) as catalog:
        commit_shards(catalog, staging, specs, message="train tests")
    for name, samples in (("cpt", 128), ("all", 256)):
        build_named(name, samples, 0, None, catalog_dir, home / "manifests")
    return home
