"""What a built manifest holds, kept beside it as JSON so showing a mixture needs no recomputation."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mm15.atomic import write_text_atomic


@dataclass(frozen=True)
class Share:
    """Expected and realised share (fractions of 1) of a category or source, with its draw counts."""

    expected: float
    realized: float
    samples: int  # positions it fills, repeats included
    available: int  # its train rows in the catalog
    unique: int  # distinct rows drawn
    repetition: float  # samples / available; above 1 means it was sampled with replacement


@dataclass(frozen=True)
class ManifestSummary:
    """The lineage and the shares of one manifest: the snapshot and hash travel into every run."""

    mixture: str
    snapshot: int
    seed: int
    samples: int
    batch_size: int
    stratified: bool
    within_category: str
    manifest_hash: str
    categories: dict[str, Share]
    sources: dict[str, Share]  # keyed "category/source"
    max_batch_deviation: float  # largest |count - expected| of one component in one batch, in samples
    spec: dict[str, Any]  # the spec as built (its YAML form)

    @property
    def max_share_error(self) -> float:
        """Largest |realized - expected| over categories, as a fraction of 1."""
        return max((abs(s.realized - s.expected) for s in self.categories.values()), default=0.0)

    @property
    def repeated(self) -> dict[str, float]:
        """Repetition factor of every category and source sampled with replacement."""
        rows = {**self.categories, **self.sources}
        return {name: s.repetition for name, s in rows.items() if s.repetition > 1}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ManifestSummary:
        shares = {
            key: {name: Share(**row) for name, row in data[key].items()} for key in ("categories", "sources")
        }
        return cls(**{**data, **shares})


def summary_path(manifest: Path) -> Path:
    """Where the summary of `manifest` lives: the same name with `.json`."""
    return Path(manifest).with_suffix(".json")


def write_summary(summary: ManifestSummary, path: Path) -> Path:
    """Write the summary as JSON, atomically."""
    return write_text_atomic(path, json.dumps(summary.to_dict(), indent=2) + "\n")


def read_summary(path: Path) -> ManifestSummary:
    """The summary of a manifest, given the manifest's path or the summary's own."""
    return ManifestSummary.from_dict(json.loads(summary_path(path).read_text()))
