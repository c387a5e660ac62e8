"""Mixture specs: which categories (or sources) a mixture draws from, and in which proportions.

A spec is data (YAML under ``catalogs/mixtures/``, format documented at the top of ``all.yaml``).
The share of a component is ``group weight * alpha / sum(alpha in its group)``: alpha is the
paper's per-batch ratio of a category relative to the others in its group (relative to *general*
when general's alpha is 1). Every spec is validated when it is built, so a MixtureSpec in hand is
always usable; errors are one-line ValueErrors that name the offending field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import yaml

from mm15.data.record import CATEGORIES
from mm15.mixture.query import train_sizes
from mm15.paths import catalogs_dir

WITHIN_CATEGORY = ("proportional", "uniform", "temperature")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SPEC_FIELDS = ("name", "description", "batch_size", "stratified", "within_category", "temperature", "groups")
_GROUP_FIELDS = ("weight", "alpha", "category", "sources")
_WEIGHT_SUM_TOLERANCE = 1e-6


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
    """A named mixture. Validated on construction (ValueError on any inconsistency)."""

    name: str
    groups: tuple[Group, ...]
    batch_size: int = 256
    stratified: bool = True  # exact per-batch counts; otherwise exact totals, batches drawn at random
    within_category: str = "proportional"  # how a category's draws split over its sources
    temperature: float | None = None  # source weights ~ size^(1/T), with within_category == "temperature"
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def components(self) -> tuple[Component, ...]:
        return tuple(c for g in self.groups for c in g.components)


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
    """Raise ValueError naming every category or source `spec` needs that the catalog lacks.

    `con` holds the catalog's `samples` relation (see mm15.mixture.query).
    """
    problems = catalog_problems(spec, train_sizes(con))
    if problems:
        raise ValueError(f"mixture {spec.name!r} does not fit the catalog: {'; '.join(problems)}")


def default_mixtures_dir() -> Path:
    """Where mixture specs live: ``mixtures/`` in the catalogs folder ($MM15_CATALOGS, default ./catalogs)."""
    return catalogs_dir() / "mixtures"


def spec_path(name: str, mixtures_dir: Path | None = None) -> Path:
    """Where the spec called `name` lives; `name` must be a plain name, so it cannot leave the folder."""
    if not _NAME.match(name):
        raise ValueError(f"bad mixture name {name!r}: use letters, digits, '_', '.', '-'")
    return Path(mixtures_dir or default_mixtures_dir()) / f"{name}.yaml"


def load_spec(name_or_path: str | Path, mixtures_dir: Path | None = None) -> MixtureSpec:
    """Load a spec by name (``all`` -> ``mixtures_dir/all.yaml``) or by path to a YAML file."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or text.endswith((".yaml", ".yml")) or "/" in text:
        path = Path(name_or_path)
    else:
        mixtures_dir = Path(mixtures_dir or default_mixtures_dir())
        path = spec_path(text, mixtures_dir)
        if not path.is_file():
            known = sorted(p.stem for p in Path(mixtures_dir).glob("*.yaml"))
            raise ValueError(f"no mixture {text!r} in {mixtures_dir} (known: {', '.join(known) or 'none'})")
    try:
        data = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: malformed YAML: {_yaml_problem(err)}") from None
    except OSError as err:
        raise ValueError(f"{path}: cannot read mixture spec: {err.strerror}") from None
    try:
        return spec_from_dict(data, default_name=path.stem)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


def spec_from_dict(data: Any, *, default_name: str | None = None) -> MixtureSpec:
    """Build a spec from parsed YAML; ValueError names the first field that is wrong."""
    if not isinstance(data, dict):
        raise ValueError("a mixture spec is a mapping with a `groups` field")
    _no_unknown(data, _SPEC_FIELDS, "spec")
    name = data.get("name", default_name)
    if not isinstance(name, str):
        raise ValueError("name: expected a string")
    groups = data.get("groups")
    if not isinstance(groups, dict) or not groups:
        raise ValueError("groups: expected a non-empty mapping of group name -> {weight, alpha}")
    temperature = data.get("temperature")
    if temperature is not None:
        temperature = _finite(temperature, "temperature")
    return MixtureSpec(
        name=name,
        groups=tuple(_group_from_dict(str(gname), g) for gname, g in groups.items()),
        batch_size=_typed(data.get("batch_size", 256), int, "batch_size"),
        stratified=_typed(data.get("stratified", True), bool, "stratified"),
        within_category=_typed(data.get("within_category", "proportional"), str, "within_category"),
        temperature=temperature,
        description=_typed(data.get("description", ""), str, "description"),
    )


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
        if g.components[0].source is None:
            groups[g.name] = {"weight": g.weight, "alpha": {c.category: c.alpha for c in g.components}}
        else:
            sources = {c.source: c.alpha for c in g.components}
            groups[g.name] = {"weight": g.weight, "category": g.components[0].category, "sources": sources}
    data["groups"] = groups
    return data


def _group_from_dict(name: str, data: Any) -> Group:
    where = f"groups.{name}"
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping with `weight` and `alpha` (or `category` + `sources`)")
    _no_unknown(data, _GROUP_FIELDS, where)
    weight = _number(data.get("weight", 1.0), f"{where}.weight")
    if "sources" in data:
        if "alpha" in data:
            raise ValueError(f"{where}: give either `alpha` (by category) or `sources`, not both")
        category = data.get("category")
        if not isinstance(category, str):
            raise ValueError(f"{where}.category: `sources` needs the category they are drawn from")
        weights = _weights(data["sources"], f"{where}.sources")
        components = tuple(Component(category, str(src), a) for src, a in weights.items())
    else:
        if "category" in data:
            raise ValueError(f"{where}.category: only used with `sources`")
        if "alpha" not in data:
            raise ValueError(f"{where}: missing `alpha` (category -> weight)")
        weights = _weights(data["alpha"], f"{where}.alpha")
        components = tuple(Component(str(cat), None, a) for cat, a in weights.items())
    return Group(name, weight, components)


def _weights(data: Any, where: str) -> dict[Any, float]:
    if not isinstance(data, dict) or not data:
        raise ValueError(f"{where}: expected a non-empty mapping of name -> weight")
    return {key: _number(value, f"{where}.{key}") for key, value in data.items()}


def _validate(spec: MixtureSpec) -> None:
    where = f"mixture {spec.name!r}"
    if not _NAME.match(spec.name):
        raise ValueError(f"{where}: bad name, use letters, digits, '_', '.', '-'")
    if not isinstance(spec.batch_size, int) or isinstance(spec.batch_size, bool) or spec.batch_size < 1:
        raise ValueError(f"{where}: batch_size must be a positive integer, got {spec.batch_size!r}")
    if spec.within_category not in WITHIN_CATEGORY:
        raise ValueError(
            f"{where}: within_category must be one of {', '.join(WITHIN_CATEGORY)}, "
            f"got {spec.within_category!r}"
        )
    if spec.within_category == "temperature":
        if spec.temperature is None or not spec.temperature > 0:
            raise ValueError(f"{where}: within_category temperature needs `temperature` > 0")
    elif spec.temperature is not None:
        raise ValueError(f"{where}: `temperature` is only used with within_category: temperature")
    if not spec.groups:
        raise ValueError(f"{where}: no groups")
    seen: dict[str, str] = {}  # category -> group that uses it
    for g in spec.groups:
        _check_weight(g.weight, f"{where}: groups.{g.name}.weight")
        if not g.components:
            raise ValueError(f"{where}: groups.{g.name} has no components")
        kinds = {c.source is None for c in g.components}
        if len(kinds) > 1 or (False in kinds and len({c.category for c in g.components}) > 1):
            raise ValueError(f"{where}: groups.{g.name}: a group holds categories or sources of one category")
        keys = [c.key for c in g.components]
        if len(set(keys)) < len(keys):
            raise ValueError(f"{where}: groups.{g.name} lists a component twice")
        for c in g.components:
            _check_weight(c.alpha, f"{where}: groups.{g.name} weight of {c.key!r}")
            if c.category not in CATEGORIES:
                raise ValueError(
                    f"{where}: groups.{g.name}: unknown category {c.category!r} "
                    f"(known: {', '.join(CATEGORIES)})"
                )
        for category in {c.category for c in g.components}:
            if category in seen:
                raise ValueError(
                    f"{where}: category {category!r} appears in groups {seen[category]} and {g.name}"
                )
            seen[category] = g.name
        if g.weight > 0 and sum(c.alpha for c in g.components) <= 0:
            raise ValueError(f"{where}: groups.{g.name} has weight {g.weight} but all its alphas are 0")
    total = sum(g.weight for g in spec.groups)
    if abs(total - 1.0) > _WEIGHT_SUM_TOLERANCE:
        weights = ", ".join(f"{g.name} {g.weight:g}" for g in spec.groups)
        raise ValueError(f"{where}: group weights must sum to 1, got {total:g} ({weights})")


def _check_weight(value: float, where: str) -> None:
    _finite(value, where)
    if value < 0:
        raise ValueError(f"{where}: negative weight {value:g}")


def _finite(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def _number(value: Any, where: str) -> float:
    _check_weight(value, where)
    return float(value)


def _typed(value: Any, kind: type, where: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"{where}: expected {kind.__name__}, got {value!r}")
    return value


def _no_unknown(data: dict, allowed: tuple[str, ...], where: str) -> None:
    unknown = [str(k) for k in data if k not in allowed]
    if unknown:
        raise ValueError(f"{where}: unknown field {unknown[0]!r} (allowed: {', '.join(allowed)})")


def _yaml_problem(err: yaml.YAMLError) -> str:
    mark = getattr(err, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return f"{getattr(err, 'problem', None) or err}{where}"


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that rejects duplicate keys instead of silently keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        keys = [self.construct_object(k, deep=deep) for k, _ in node.value]
        for i, key in enumerate(keys):
            if key in keys[:i]:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", node.value[i][0].start_mark
                )
        return super().construct_mapping(node, deep=deep)
