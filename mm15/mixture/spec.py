"""Mixture specs: which categories (or sources) a mixture draws from, and in which proportions.

A spec is data (YAML under ``catalogs/mixtures/``, format documented at the top of ``all.yaml``).
The share of a component is ``group weight * alpha / sum(alpha in its group)``: alpha is the
paper's per-batch ratio of a category relative to the others in its group (relative to *general*
when general's alpha is 1). The file format is the typed model ``MixtureFile``; every spec is
validated through it when it is built, so a MixtureSpec in hand is always usable. Errors are
one-line ConfigErrors (ValueErrors) that name the file and the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import duckdb
from pydantic import Field, field_validator, model_validator

from mm15.config import (
    ConfigError,
    PlainName,
    StrictModel,
    config_file,
    display_path,
    named_config_path,
    read_yaml,
    validate,
)
from mm15.data.record import CATEGORIES
from mm15.mixture.query import train_sizes
from mm15.paths import catalogs_dir

WITHIN_CATEGORY = ("proportional", "uniform", "temperature")
_WEIGHT_SUM_TOLERANCE = 1e-6

Weight = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]


@dataclass(frozen=True)
class Component:
    """One stratum of a mixture: a whole category, or one source of a category (``source`` set)."""

    category: str
    source: str | None
    alpha: float

    @property
    def key(self) -> str:
        return self.category if self.source is None else f"{self.category}/{self.source}"


@dataclass(frozen=True)
class Group:
    """Components sharing one group weight (the paper's single-image, multi-image, text-only)."""

    name: str
    weight: float
    components: tuple[Component, ...]


@dataclass(frozen=True)
class MixtureSpec:
    """A named mixture. Validated on construction, through MixtureFile (ConfigError on any problem)."""

    name: str
    groups: tuple[Group, ...]
    batch_size: int = 256
    stratified: bool = True  # exact per-batch counts; otherwise exact totals, batches drawn at random
    within_category: str = "proportional"  # how a category's draws split over its sources
    temperature: float | None = None  # source weights ~ size^(1/T), with within_category == "temperature"
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        validate(MixtureFile, spec_to_dict(self), f"mixture {self.name!r}")

    @property
    def components(self) -> tuple[Component, ...]:
        return tuple(c for g in self.groups for c in g.components)


class GroupFile(StrictModel):
    """One group of a mixture file: `weight` and either `alpha` per category or `category` + `sources`."""

    weight: Weight = 1.0
    alpha: dict[str, Weight] | None = None
    category: str | None = None
    sources: dict[str, Weight] | None = None

    @model_validator(mode="after")
    def _one_kind_of_components(self) -> GroupFile:
        if self.sources is not None:
            if self.alpha is not None:
                raise ValueError("give either `alpha` (by category) or `sources`, not both")
            if self.category is None:
                raise ValueError("`sources` needs the category they are drawn from (`category`)")
            if self.category not in CATEGORIES:
                raise ValueError(f"unknown category {self.category!r} (known: {', '.join(CATEGORIES)})")
        else:
            if self.category is not None:
                raise ValueError("`category` is only used with `sources`")
            if self.alpha is None:
                raise ValueError("missing `alpha` (category -> weight)")
            unknown = [c for c in self.alpha if c not in CATEGORIES]
            if unknown:
                raise ValueError(f"unknown category {unknown[0]!r} (known: {', '.join(CATEGORIES)})")
        weights = self.weights
        if not weights:
            raise ValueError("expected a non-empty mapping of name -> weight")
        if self.weight > 0 and sum(weights.values()) <= 0:
            raise ValueError(f"weight {self.weight:g} but all its alphas are 0")
        return self

    @property
    def weights(self) -> dict[str, float]:
        return dict(self.sources if self.sources is not None else self.alpha or {})

    def to_group(self, name: str) -> Group:
        if self.sources is not None:
            components = tuple(Component(self.category, str(s), a) for s, a in self.sources.items())
        else:
            components = tuple(Component(str(c), None, a) for c, a in (self.alpha or {}).items())
        return Group(name, self.weight, components)


class MixtureFile(StrictModel):
    """A mixture spec file (catalogs/mixtures/*.yaml): the format documented at the top of all.yaml."""

    name: PlainName
    description: str = ""
    batch_size: Annotated[int, Field(strict=True, ge=1)] = 256
    stratified: Annotated[bool, Field(strict=True)] = True
    within_category: Literal["proportional", "uniform", "temperature"] = "proportional"
    temperature: Annotated[float, Field(strict=True, allow_inf_nan=False)] | None = None
    groups: dict[str, GroupFile]

    @model_validator(mode="before")
    @classmethod
    def _a_mapping(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError("a mixture spec is a mapping with a `groups` field")
        return data

    @field_validator("groups")
    @classmethod
    def _some_groups(cls, groups: dict[str, GroupFile]) -> dict[str, GroupFile]:
        if not groups:
            raise ValueError("expected a non-empty mapping of group name -> {weight, alpha}")
        return groups

    @model_validator(mode="after")
    def _consistent(self) -> MixtureFile:
        if self.within_category == "temperature":
            if self.temperature is None or not self.temperature > 0:
                raise ValueError("within_category temperature needs `temperature` > 0")
        elif self.temperature is not None:
            raise ValueError("`temperature` is only used with within_category: temperature")
        seen: dict[str, str] = {}  # category -> the group that uses it
        for name, group in self.groups.items():
            for category in {group.category} if group.sources is not None else set(group.weights):
                if category in seen:
                    raise ValueError(f"category {category!r} appears in groups {seen[category]} and {name}")
                seen[category] = name
        total = sum(g.weight for g in self.groups.values())
        if not math.isclose(total, 1.0, abs_tol=_WEIGHT_SUM_TOLERANCE):
            weights = ", ".join(f"{n} {g.weight:g}" for n, g in self.groups.items())
            raise ValueError(f"group weights must sum to 1, got {total:g} ({weights})")
        return self

    def to_spec(self) -> MixtureSpec:
        return MixtureSpec(
            name=self.name,
            groups=tuple(g.to_group(name) for name, g in self.groups.items()),
            batch_size=self.batch_size,
            stratified=self.stratified,
            within_category=self.within_category,
            temperature=self.temperature,
            description=self.description,
        )


def component_shares(spec: MixtureSpec) -> dict[str, float]:
    """Expected share (fraction of 1) of every component, keyed by Component.key, in spec order."""
    shares = {}
    for group in spec.groups:
        total = sum(c.alpha for c in group.components)
        for c in group.components:
            shares[c.key] = group.weight * c.alpha / total if total > 0 else 0.0
    return shares


def expected_shares(spec: MixtureSpec) -> dict[str, float]:
    """Expected share (fraction of 1) of every category the spec names, in spec order."""
    shares: dict[str, float] = {}
    for c, share in zip(spec.components, component_shares(spec).values(), strict=True):
        shares[c.category] = shares.get(c.category, 0.0) + share
    return shares


def catalog_problems(spec: MixtureSpec, sizes: Mapping[tuple[str, str], int]) -> list[str]:
    """What the catalog lacks for `spec`, given train rows per (category, source); empty when fine.

    Components with a zero share need nothing from the catalog.
    """
    categories = {cat for cat, _ in sizes}
    problems = []
    for c, share in zip(spec.components, component_shares(spec).values(), strict=True):
        if share <= 0:
            continue
        if c.category not in categories:
            problems.append(f"category {c.category!r} has no train samples")
        elif c.source is not None and sizes.get((c.category, c.source), 0) == 0:
            have = sorted(src for cat, src in sizes if cat == c.category)
            problems.append(f"category {c.category!r} has no source {c.source!r} (has: {', '.join(have)})")
    return problems


def check_against_catalog(spec: MixtureSpec, con: duckdb.DuckDBPyConnection) -> None:
    """Raise a ConfigError naming every category or source `spec` needs that the catalog lacks.

    `con` holds the catalog's `samples` relation (see mm15.mixture.query).
    """
    problems = catalog_problems(spec, train_sizes(con))
    if problems:
        raise ConfigError(f"mixture {spec.name!r} does not fit the catalog: {'; '.join(problems)}")


def default_mixtures_dir() -> Path:
    """Where mixture specs live: ``mixtures/`` in the catalogs folder ($MM15_CATALOGS, default ./catalogs)."""
    return catalogs_dir() / "mixtures"


def spec_path(name: str, mixtures_dir: Path | None = None) -> Path:
    """Where the spec called `name` lives (a plain name: it cannot leave the folder)."""
    return named_config_path(name, Path(mixtures_dir or default_mixtures_dir()), "mixture")


def load_spec(name_or_path: str | Path, mixtures_dir: Path | None = None) -> MixtureSpec:
    """Load a spec by name (``all`` -> ``mixtures_dir/all.yaml``) or by path to a YAML file."""
    path = config_file(name_or_path, Path(mixtures_dir or default_mixtures_dir()), "mixture")
    return spec_from_dict(read_yaml(path), default_name=path.stem, where=display_path(path))


def known_specs(mixtures_dir: Path | None = None) -> list[str]:
    """Names of the mixture specs in `mixtures_dir` (default: the catalogs' mixtures folder)."""
    return sorted(p.stem for p in Path(mixtures_dir or default_mixtures_dir()).glob("*.yaml"))


def spec_from_dict(data: Any, *, default_name: str | None = None, where: str = "mixture spec") -> MixtureSpec:
    """Build a spec from parsed YAML; a ConfigError names the first field that is wrong."""
    if isinstance(data, dict) and default_name is not None:
        data = {"name": default_name, **data}
    return validate(MixtureFile, data, where).to_spec()


def spec_to_dict(spec: MixtureSpec) -> dict[str, Any]:
    """The YAML form of a spec; ``spec_from_dict(spec_to_dict(s)) == s``."""
    data: dict[str, Any] = {"name": spec.name}
    if spec.description:
        data["description"] = spec.description
    data |= {"batch_size": spec.batch_size, "stratified": spec.stratified}
    data["within_category"] = spec.within_category
    if spec.temperature is not None:
        data["temperature"] = spec.temperature
    groups = {}
    for g in spec.groups:
        if g.components and g.components[0].source is not None:
            sources = {c.source: c.alpha for c in g.components}
            groups[g.name] = {"weight": g.weight, "category": g.components[0].category, "sources": sources}
        else:
            groups[g.name] = {"weight": g.weight, "alpha": {c.category: c.alpha for c in g.components}}
    data["groups"] = groups
    return data
