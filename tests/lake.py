"""A catalog in a temporary folder, filled with handmade samples."""

import os
from pathlib import Path

from mm15.catalog import open_catalog
from mm15.catalog.commit import commit_shards
from mm15.catalog.staging import ShardSpec, stage_records
from mm15.data.record import Reason, Reject, Sample
from tests.images import png


def sample(
    source: str, key: str, image_seeds=(1,), text="What is shown?", split="train", images=None
) -> Sample:
    images = [png(s) for s in image_seeds] if images is None else images
    markers = "<image>" * len(images)
    return Sample(
        source=source,
        key=key,
        category="general",
        split=split,
        messages=[
            {"role": "user", "content": markers + text},
            {"role": "assistant", "content": "An answer."},
        ],
        images=images,
    )


class Lake:
    """A catalog in a temporary folder, with helpers to stage and commit handmade shards."""

    def __init__(self, root: Path, location=None):
        self.root = root / "catalog"
        self.staging = root / "staging"
        self.location = location  # None: the catalog the environment names (default: under root)

    def stage(self, source: str, records, split="train", start=0) -> ShardSpec:
        spec = ShardSpec(source=source, split=split, category="general", format="test", start=start)
        stage_records(spec, records, self.staging)
        return spec

    def commit(self, specs, message="test"):
        with open_catalog(self.root, read_only=False, location=self.location) as catalog:
            return commit_shards(catalog, self.staging, specs, message=message)

    def query(self, sql, snapshot=None):
        with open_catalog(self.root, snapshot=snapshot, location=self.location) as catalog:
            return catalog.query(sql)[1]

    def snapshot(self) -> int:
        with open_catalog(self.root, location=self.location) as catalog:
            return catalog.snapshot_id()

    def env(self) -> dict[str, str]:
        """The environment of an `mm15` command reading this catalog."""
        return {**os.environ, "MM15_HOME": str(self.root.parent)}


def staging_records() -> list[Sample | Reject]:
    """One shard's records: three valid samples sharing two images, one sample the validator rejects
    (its split), one adapter reject."""
    return [
        sample("src", "k0", image_seeds=(1,)),
        sample("src", "k1", image_seeds=(2,)),
        sample("src", "k2", image_seeds=(1,), text="Describe it."),  # image 1 again
        sample("src", "k3", image_seeds=(3,), split="validation"),  # not a split: quarantined
        Reject("src", "k4", Reason.INVALID_JSON, "Expecting value"),
    ]
