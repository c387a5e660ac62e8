"""A small real catalog for training and evaluation tests, and a tiny model trained on it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

TRAIN, EVAL = 32, 8


def build_train_home(home: Path) -> Path:
    """A catalog of every synthetic source (TRAIN + EVAL samples each) under `home`, and manifests of the
    `cpt` (128 positions) and `all` (256 positions) mixtures."""
    from mm15.catalog import open_catalog
    from mm15.catalog.commit import commit_shards
    from mm15.catalog.staging import ShardSpec, stage_shard
    from mm15.data.synthetic import SYNTHETIC_SOURCES
    from mm15.mixture.store import build_named

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


def train(home: Path, out: Path, stage: str, *extra: str) -> dict:
    """`mm15 train` in a subprocess; the run's summary."""
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


def train_tiny(home: Path, folder: Path) -> dict:
    cpt = train(home, folder / "cpt", "cpt", "--max-steps", "15")
    sft = train(home, folder / "sft", "sft", "--max-steps", "60", "--init", cpt["last_checkpoint"])
    return {"cpt": cpt, "sft": sft}
