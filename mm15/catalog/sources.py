"""What feeds the catalog, as typed configuration: the synthetic presets and the real sources.

- ``catalogs/synthetic.yaml``: how many samples each built-in synthetic source gives per preset and split.
- ``catalogs/sources/*.yaml``: one real dataset each (or the arguments of ``mm15 ingest``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator

from mm15 import paths
from mm15.config import ConfigError, StrictModel, load_config, validate
from mm15.data.record import CATEGORIES

Count = Annotated[int, Field(strict=True, ge=0)]
Positive = Annotated[int, Field(strict=True, ge=1)]


class SplitSizes(StrictModel):
    """Samples of one synthetic source per split."""

    train: Count = 0
    eval: Count = 0


class SyntheticPreset(StrictModel):
    """One preset of synthetic.yaml: the image size and the sizes of each source."""

    image_size: Annotated[int, Field(strict=True, ge=64)]
    sources: dict[str, SplitSizes]

    @field_validator("sources")
    @classmethod
    def _known_sources(cls, sources: dict[str, SplitSizes]) -> dict[str, SplitSizes]:
        from mm15.data.synthetic import SYNTHETIC_SOURCES

        unknown = [s for s in sources if s not in SYNTHETIC_SOURCES]
        if unknown:
            raise ValueError(
                f"unknown synthetic source {unknown[0]!r} (known: {', '.join(SYNTHETIC_SOURCES)})"
            )
        return sources


class SyntheticConfig(StrictModel):
    """catalogs/synthetic.yaml: the generators' seed, the shard size, and the presets."""

    seed: Annotated[int, Field(strict=True)]
    shard_size: Positive
    presets: dict[str, SyntheticPreset]

    def preset(self, name: str) -> SyntheticPreset:
        if name not in self.presets:
            raise ConfigError(f"unknown preset {name!r}: choose one of {', '.join(self.presets)}")
        return self.presets[name]


def load_synthetic_config(catalogs: Path | None = None) -> SyntheticConfig:
    return load_config((catalogs or paths.catalogs_dir()) / "synthetic.yaml", SyntheticConfig)


class SourceConfig(StrictModel):
    """A real dataset to ingest: one ``catalogs/sources/*.yaml`` file, or the arguments of ``mm15 ingest``.

    A relative `path` in a file is relative to that file (the validation context's ``base``).
    """

    name: str
    format: str
    path: Path
    category: str
    split: Literal["train", "eval"] = "train"

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        from mm15.data.synthetic import SYNTHETIC_SOURCES

        if not name or not name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"source name {name!r}: use letters, digits, '_' and '-'")
        if name in SYNTHETIC_SOURCES:
            raise ValueError(f"source name {name!r} is taken by a built-in synthetic source")
        return name

    @field_validator("format", "category")
    @classmethod
    def _known(cls, value: str, info: ValidationInfo) -> str:
        from mm15.data.adapters import FORMATS

        known = FORMATS if info.field_name == "format" else CATEGORIES
        if value not in known:
            raise ValueError(f"unknown {info.field_name} {value!r}: choose one of {', '.join(known)}")
        return value

    @field_validator("path")
    @classmethod
    def _absolute(cls, path: Path, info: ValidationInfo) -> Path:
        base = Path((info.context or {}).get("base", "."))
        return (path if path.is_absolute() else base / path).resolve()


def source_config(where: str, **fields: object) -> SourceConfig:
    """A SourceConfig from plain values (e.g. command-line arguments), errors naming `where`."""
    return validate(SourceConfig, fields, where)


def configured_sources(catalogs: Path | None = None) -> list[SourceConfig]:
    """Every real source configured under ``catalogs/sources/``, in file name order."""
    folder = (catalogs or paths.catalogs_dir()) / "sources"
    return [
        load_config(file, SourceConfig, context={"base": file.parent})
        for file in sorted(folder.glob("*.yaml"))
    ]
