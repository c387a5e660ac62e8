"""Ablation variants of a mixture (as the paper's: one alpha, or one group weight, over a list of values).

Variants are ordinary specs with derived names; written as YAML beside the shipped ones, they build
like any other mixture (`mm15 mixture build all-science-alpha0.2`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path

import yaml

from mm15.atomic import write_text_atomic
from mm15.config import ConfigError
from mm15.mixture.spec import Group, MixtureSpec, spec_path, spec_to_dict


def sweep_specs(
    base: MixtureSpec,
    *,
    category: str | None = None,
    alphas: Sequence[float] = (),
    group: str | None = None,
    weights: Sequence[float] = (),
) -> list[MixtureSpec]:
    """Named variants of `base`: the alpha of `category` over `alphas`, then `group`'s weight over `weights`.

    `category` names a component: a category, or ``category/source`` in a sources group. Variants are
    named ``{base}-{category}-alpha{value}``. A group weight variant sets that group's weight and rescales
    the other groups so the weights still sum to 1, keeping their proportions: ``{base}-{group}-w{value}``.
    """
    if category is None and group is None:
        raise ConfigError("sweep needs a category (with alphas) or a group (with weights)")
    variants = []
    if category is not None:
        variants += [_with_alpha(base, category, a) for a in _values(alphas, f"alphas for {category!r}")]
    if group is not None:
        variants += [_with_group_weight(base, group, w) for w in _values(weights, f"weights for {group!r}")]
    return variants


def write_spec(spec: MixtureSpec, path: Path) -> Path:
    """Write `spec` as YAML (atomically); `load_spec(path)` gives it back."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "# Mixture spec (format: see catalogs/mixtures/all.yaml).\n"
    text += yaml.safe_dump(spec_to_dict(spec), sort_keys=False, default_flow_style=None, width=110)
    return write_text_atomic(path, text)


def write_sweep(specs: Iterable[MixtureSpec], mixtures_dir: Path | None = None) -> list[Path]:
    """Write each spec to ``{mixtures_dir}/{name}.yaml`` (default: the catalogs' mixtures folder)."""
    return [write_spec(spec, spec_path(spec.name, mixtures_dir)) for spec in specs]


def _with_alpha(base: MixtureSpec, key: str, alpha: float) -> MixtureSpec:
    keys = [c.key for c in base.components]
    if key not in keys:
        raise ConfigError(f"mixture {base.name!r} has no component {key!r} (has: {', '.join(keys)})")
    groups = tuple(
        dataclasses.replace(
            g,
            components=tuple(
                dataclasses.replace(c, alpha=alpha) if c.key == key else c for c in g.components
            ),
        )
        for g in base.groups
    )
    name = f"{base.name}-{key.replace('/', '-')}-alpha{_label(alpha)}"
    return dataclasses.replace(
        base, name=name, groups=groups, description=f"{base.name} with alpha {key} = {alpha:g}"
    )


def _with_group_weight(base: MixtureSpec, group: str, weight: float) -> MixtureSpec:
    names = [g.name for g in base.groups]
    if group not in names:
        raise ConfigError(f"mixture {base.name!r} has no group {group!r} (has: {', '.join(names)})")
    if not 0 <= weight <= 1:
        raise ConfigError(f"a group weight is a share of the whole, in [0, 1]: got {weight:g}")
    others = sum(g.weight for g in base.groups if g.name != group)
    if others <= 0 and weight < 1:
        raise ConfigError(f"mixture {base.name!r}: no other group weight to rescale for {group} = {weight:g}")

    def reweighted(g: Group) -> Group:
        new = weight if g.name == group else (g.weight * (1 - weight) / others if others > 0 else 0.0)
        return dataclasses.replace(g, weight=new)

    name = f"{base.name}-{group}-w{_label(weight)}"
    description = f"{base.name} with group {group} weight {weight:g}"
    return dataclasses.replace(
        base, name=name, groups=tuple(map(reweighted, base.groups)), description=description
    )


def _values(values: Sequence[float], what: str) -> list[float]:
    if not values:
        raise ConfigError(f"no {what}")
    if len(set(values)) < len(values):
        raise ConfigError(f"repeated value in {what}: {list(values)}")
    return [float(v) for v in values]


def _label(value: float) -> str:
    return format(value, "g").replace("+", "")
