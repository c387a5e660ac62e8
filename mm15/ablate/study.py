"""Ablation studies as data: a base configuration, arms that override it, and the findings to test.

A study file (catalogs/ablations/*.yaml, or any path a user passes):

    name: multi-image-weight
    description: ...
    base:                      every field optional but preset and mixture
      preset: tiny
      mixture: all             a mixture in catalogs/mixtures/ (or a YAML path)
      cpt: none                none (no CPT) | low (CPT on one view per image) | high (static 2x2 + overview)
      sft_steps: 300           default: the SFT stage's max_steps for the preset
      split: static            how SFT splits images (the paper's ablations: static 2x2 + overview)
      eval_limit: 100          samples scored per benchmark
    arms:                      arm name -> overrides of the base (an empty mapping: the base itself)
      w0:   {groups: {single_image: 0.9, multi_image: 0.0, text_only: 0.1}}
      w0.1: {}
    findings:
      - name: multi-image data lifts multi_image
        metric: multi_image    an evaluation category, or mmbase
        expect: w0.1 > w0

Arm overrides: `mixture`, `alpha` (category -> alpha; a category missing from the mixture joins its first
alpha group), `groups` (group -> weight; the weights must still sum to 1), `cpt`, `split`, `overview`
(before | after), `tile_indicators` (on | off), `sft_steps`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from mm15 import paths
from mm15.config import ConfigError, PlainName, StrictModel, config_file, display_path, read_yaml, validate
from mm15.eval.benchmarks import BENCHMARK_CATEGORIES
from mm15.mixture.spec import MixtureSpec, load_spec, spec_from_dict, spec_to_dict

CptLevel = Literal["none", "low", "high"]
METRICS = (*BENCHMARK_CATEGORIES, "mmbase")
_EXPECT = re.compile(r"^\s*(\S+)\s*>\s*(\S+)\s*$")
Steps = Annotated[int, Field(strict=True, ge=1)]
Weight = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class Base(StrictModel):
    preset: str
    mixture: str
    cpt: CptLevel = "none"
    sft_steps: Steps | None = None
    split: Literal["static", "dynamic", "none"] = "static"
    eval_limit: Steps = 100


class Arm(StrictModel):
    mixture: str | None = None
    alpha: dict[str, Weight] = {}
    groups: dict[str, Weight] = {}
    cpt: CptLevel | None = None
    split: Literal["static", "dynamic", "none"] | None = None
    overview: Literal["before", "after"] | None = None
    tile_indicators: bool | None = None  # YAML on / off
    sft_steps: Steps | None = None


class Finding(StrictModel):
    name: str
    metric: Literal[METRICS]  # type: ignore[valid-type]
    expect: str

    @field_validator("expect")
    @classmethod
    def _a_comparison(cls, value: str) -> str:
        if not _EXPECT.match(value):
            raise ValueError(f"expected the form 'ARM_A > ARM_B', got {value!r}")
        return value

    @property
    def arms(self) -> tuple[str, str]:
        better, worse = _EXPECT.match(self.expect).groups()
        return better, worse


class StudyFile(StrictModel):
    name: PlainName
    description: str = ""
    base: Base
    arms: dict[PlainName, Arm | None]
    findings: list[Finding] = []

    @model_validator(mode="after")
    def _findings_name_arms(self) -> StudyFile:
        if not self.arms:
            raise ValueError("arms: expected at least one arm")
        for i, finding in enumerate(self.findings):
            for arm in finding.arms:
                if arm not in self.arms:
                    raise ValueError(f"findings.{i}.expect: no arm {arm!r} (arms: {', '.join(self.arms)})")
        return self


@dataclasses.dataclass(frozen=True)
class ArmPlan:
    """Everything one arm trains and scores with (its seed apart): what makes its runs' cache keys."""

    preset: str
    mixture: MixtureSpec
    cpt: CptLevel
    sft_steps: int | None
    split: str
    overview: str | None
    tile_indicators: str | None
    eval_limit: int

    def key(self) -> str:
        data = dataclasses.asdict(self) | {"mixture": spec_to_dict(self.mixture)}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


@dataclasses.dataclass(frozen=True)
class Study:
    name: str
    description: str
    path: Path
    arms: dict[str, ArmPlan]
    findings: list[Finding]


def studies_dir() -> Path:
    return paths.catalogs_dir() / "ablations"


def known_studies() -> list[str]:
    return sorted(p.stem for p in studies_dir().glob("*.yaml"))


def load_study(name_or_path: str | Path, preset: str | None = None) -> Study:
    """A built-in study by name or a study file by path, its arms resolved against the base (and
    `preset`, when given, in place of the base's); a ConfigError names the file and the field."""
    path = config_file(name_or_path, studies_dir(), "study")
    where = display_path(path)
    data = read_yaml(path)
    if isinstance(data, dict):
        data = {"name": path.stem, **data}
    study = validate(StudyFile, data, where)
    base = study.base if preset is None else study.base.model_copy(update={"preset": preset})
    arms = {name: _plan(base, arm or Arm(), f"{where}: arms.{name}") for name, arm in study.arms.items()}
    return Study(study.name, study.description, path, arms, list(study.findings))


def _plan(base: Base, arm: Arm, where: str) -> ArmPlan:
    mixture = _mixture(load_spec(arm.mixture or base.mixture), arm, where)
    indicators = None if arm.tile_indicators is None else ("index" if arm.tile_indicators else "none")
    return ArmPlan(
        preset=base.preset,
        mixture=mixture,
        cpt=arm.cpt or base.cpt,
        sft_steps=arm.sft_steps or base.sft_steps,
        split=arm.split or base.split,
        overview=arm.overview,
        tile_indicators=indicators,
        eval_limit=base.eval_limit,
    )


def _mixture(spec: MixtureSpec, arm: Arm, where: str) -> MixtureSpec:
    """`spec` with the arm's alphas and group weights, named by its content (`ablate-<hash>`)."""
    data = spec_to_dict(spec)
    groups = data["groups"]
    for group, weight in arm.groups.items():
        if group not in groups:
            raise ConfigError(f"{where}.groups: no group {group!r} in mixture {spec.name!r}")
        groups[group]["weight"] = weight
    for category, alpha in arm.alpha.items():
        holder = next((g for g in groups.values() if category in g.get("alpha", {})), None)
        holder = holder or next((g for g in groups.values() if "alpha" in g), None)
        if holder is None:
            raise ConfigError(f"{where}.alpha: mixture {spec.name!r} has no alpha group for {category!r}")
        holder["alpha"][category] = alpha
    data.pop("name")
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:10]
    data["description"] = f"{spec.name} as changed by an ablation arm"
    return spec_from_dict(data, default_name=f"ablate-{spec.name}-{digest}", where=where)
