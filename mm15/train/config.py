"""Training stages as data: catalogs/stages/NAME.yaml, with per-preset overrides, read into a StageConfig."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from mm15 import paths
from mm15.config import ConfigError, StrictModel, display_path, read_yaml, validate

PARTS = ("vision_tower", "connector", "language_model")


class StageConfig(StrictModel):
    """One training stage: what it trains on, how it splits and lays out images, and the optimisation
    settings. `tile_indicators` and `overview` left None keep what the processor (preset or checkpoint)
    has; set, they become the processor's and are saved with the stage's checkpoints."""

    name: str
    description: str = ""
    mixture: str = "all"
    split: Literal["static", "dynamic", "none"] = "dynamic"
    tile_indicators: Literal["index", "seps", "none"] | None = None
    overview: Literal["after", "before"] | None = None
    optimizer: Literal["adafactor", "adamw"] = "adafactor"
    peak_lr: float = Field(2e-5, gt=0)
    warmup_steps: int = Field(0, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    max_steps: int | None = Field(None, gt=0)
    global_batch: int = Field(256, gt=0)
    micro_batch: int = Field(1, gt=0)
    seq_len: int = Field(2048, gt=0)
    max_views: int = Field(64, gt=0)
    grad_clip: float = Field(1.0, ge=0)
    gradient_checkpointing: bool = False
    freeze: list[Literal["vision_tower", "connector", "language_model"]] = []
    bf16: bool = True
    save_every: int = Field(1000, gt=0)
    keep_checkpoints: int = Field(3, gt=0)
    workers: int = Field(2, ge=0)
    seed: int = 0

    def with_overrides(self, **changes: Any) -> StageConfig:
        """A copy with some fields changed (validated like the file)."""
        return validate(StageConfig, self.model_dump() | changes, f"stage {self.name}")


class StageFile(StageConfig):
    presets: dict[str, dict[str, Any]] = {}

    @model_validator(mode="after")
    def _overrides_are_fields(self) -> StageFile:
        for preset, changes in self.presets.items():
            unknown = set(changes) - set(StageConfig.model_fields)
            if unknown:
                raise ValueError(f"presets.{preset}: unknown field {sorted(unknown)[0]!r}")
        return self


def stages_dir() -> Path:
    return paths.catalogs_dir() / "stages"


def known_stages() -> list[str]:
    return sorted(p.stem for p in stages_dir().glob("*.yaml"))


def load_stage(name: str, preset: str) -> StageConfig:
    """Stage `name` for model preset `preset`: the file's fields, then the preset's overrides."""
    path = stages_dir() / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"no stage {name!r}: known stages are {', '.join(known_stages()) or 'none'}")
    data = read_yaml(path)
    stage = validate(StageFile, data, display_path(path))
    base = stage.model_dump(exclude={"presets"})
    return validate(
        StageConfig, base | stage.presets.get(preset, {}), f"{display_path(path)}: presets.{preset}"
    )
