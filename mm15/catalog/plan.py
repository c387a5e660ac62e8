"""What a curation run stages: shards of the synthetic sources and of the configured real sources."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from mm15 import paths
from mm15.catalog.staging import ShardSpec, file_fingerprint
from mm15.data.record import CATEGORIES, SPLITS
from mm15.errors import UserError


@dataclass(frozen=True)
class SourceConfig:
    """A real dataset to ingest: one `catalogs/sources/*.yaml` file, or the arguments of `mm15 ingest`."""

    name: str
    format: str
    path: Path
    category: str
    split: str = "train"

    def check(self) -> None:
        from mm15.data.adapters import FORMATS
        from mm15.data.synthetic import SYNTHETIC_SOURCES

        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise UserError(f"source name {self.name!r}: use letters, digits, '_' and '-'")
        if self.name in SYNTHETIC_SOURCES:
            raise UserError(f"source name {self.name!r} is taken by a built-in synthetic source")
        if self.format not in FORMATS:
            raise UserError(f"unknown format {self.format!r}: choose one of {', '.join(FORMATS)}")
        if self.category not in CATEGORIES:
            raise UserError(f"unknown category {self.category!r}: choose one of {', '.join(CATEGORIES)}")
        if self.split not in SPLITS:
            raise UserError(f"unknown split {self.split!r}: choose train or eval")
        if not self.path.exists():
            raise UserError(f"{self.path} does not exist")


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise UserError(f"{path}: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping")
    return data


def synthetic_shards(preset: str, catalogs: Path | None = None) -> list[ShardSpec]:
    config = _read_yaml((catalogs or paths.catalogs_dir()) / "synthetic.yaml")
    presets = config.get("presets", {})
    if preset not in presets:
        raise UserError(f"unknown preset {preset!r}: choose one of {', '.join(presets)}")
    from mm15.data.synthetic import SYNTHETIC_SOURCES

    size, seed, image_size = (
        int(config["shard_size"]),
        int(config["seed"]),
        int(presets[preset]["image_size"]),
    )
    specs = []
    for source, counts in presets[preset]["sources"].items():
        if source not in SYNTHETIC_SOURCES:
            raise UserError(f"synthetic.yaml: unknown synthetic source {source!r}")
        for split, total in counts.items():
            for start in range(0, int(total), size):
                specs.append(
                    ShardSpec(
                        source=source,
                        split=split,
                        category=SYNTHETIC_SOURCES[source],
                        start=start,
                        count=min(size, int(total) - start),
                        seed=seed,
                        image_size=image_size,
                    )
                )
    return specs


def configured_sources(catalogs: Path | None = None) -> list[SourceConfig]:
    folder = (catalogs or paths.catalogs_dir()) / "sources"
    sources = []
    for file in sorted(folder.glob("*.yaml")):
        data = _read_yaml(file)
        try:
            path = Path(data["path"])
            sources.append(
                SourceConfig(
                    name=data["name"],
                    format=data["format"],
                    path=path if path.is_absolute() else (file.parent / path).resolve(),
                    category=data["category"],
                    split=data.get("split", "train"),
                )
            )
        except (KeyError, TypeError) as e:
            raise UserError(f"{file}: missing or bad field {e}") from None
    return sources


def source_shards(source: SourceConfig) -> list[ShardSpec]:
    """One shard per input file; the file's content hash is part of the shard key."""
    from mm15.data.adapters import list_shards

    source.check()
    try:
        files = list_shards(source.format, source.path)
    except ValueError as e:
        raise UserError(str(e)) from None
    root = source.path if source.path.is_dir() else source.path.parent
    return [
        ShardSpec(
            source=source.name,
            split=source.split,
            category=source.category,
            format=source.format,
            path=str(f.resolve()),
            root=str(root.resolve()),
            fingerprint=file_fingerprint(f),
        )
        for f in files
    ]
