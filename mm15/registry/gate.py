"""The promotion gate: a new version is the `challenger`; it becomes the `champion` when its MMBase beats
the champion's and no tracked category drops by more than the tolerance (catalogs/promotion.yaml).

The decision is recorded on the version as tags (mm15.gate.*), so gating a version twice gives the
recorded decision back; `promote` is for people: the rule run again now, or overridden with `force`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from mm15 import tracking
from mm15.config import StrictModel, load_config
from mm15.errors import UserError
from mm15.eval.benchmarks import BENCHMARK_CATEGORIES
from mm15.paths import catalogs_dir
from mm15.registry.register import check_name, scores_from_tags, versions

CHAMPION, CHALLENGER = "champion", "challenger"
GATE = "mm15.gate."
EPSILON = 1e-9  # scores are rounded to hundredths: closer than this is equal


@dataclass(frozen=True)
class GateConfig:
    tolerance: float  # points (0-100 scale) a tracked category may drop
    tracked: tuple[str, ...]


class _PromotionFile(StrictModel):
    tolerance: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    tracked: list[Literal[BENCHMARK_CATEGORIES]]  # type: ignore[valid-type]

    @field_validator("tracked")
    @classmethod
    def _unique(cls, tracked: list[str]) -> list[str]:
        repeated = sorted({k for k in tracked if tracked.count(k) > 1})
        if repeated:
            raise ValueError(f"{repeated[0]!r} is listed twice")
        return tracked


def load_gate_config(path: Path | None = None) -> GateConfig:
    """The promotion rule's settings: `path`, else promotion.yaml in the catalogs folder ($MM15_CATALOGS)."""
    loaded = load_config(Path(path) if path else catalogs_dir() / "promotion.yaml", _PromotionFile)
    return GateConfig(float(loaded.tolerance), tuple(loaded.tracked))


@dataclass(frozen=True)
class Decision:
    promoted: bool
    reason: str
    challenger: int
    champion: int | None  # the champion it was compared with (None: there was none)
    deltas: dict[str, float] = field(default_factory=dict)  # challenger minus champion, points
    forced: bool = False

    def as_tags(self) -> dict[str, str]:
        tags = {
            f"{GATE}promoted": str(self.promoted).lower(),
            f"{GATE}reason": self.reason,
            f"{GATE}champion": "none" if self.champion is None else str(self.champion),
            f"{GATE}forced": str(self.forced).lower(),
        }
        return tags | {f"{GATE}delta.{k}": f"{v:.4f}" for k, v in self.deltas.items()}

    @classmethod
    def from_tags(cls, version: int, tags: dict[str, str]) -> Decision:
        champion = tags.get(f"{GATE}champion", "none")
        prefix = f"{GATE}delta."
        return cls(
            promoted=tags.get(f"{GATE}promoted") == "true",
            reason=tags.get(f"{GATE}reason", ""),
            challenger=version,
            champion=None if champion == "none" else int(champion),
            deltas={k.removeprefix(prefix): float(v) for k, v in tags.items() if k.startswith(prefix)},
            forced=tags.get(f"{GATE}forced") == "true",
        )


def decide(challenger: dict, champion: dict | None, config: GateConfig) -> tuple[bool, str, dict[str, float]]:
    """(promoted, reason, deltas): promote the first version; then only a strictly better MMBase with no
    tracked category dropping by more than `config.tolerance` points (a drop of exactly that passes)."""
    if champion is None:
        return True, "first version: no champion to beat", {}
    new, old = challenger.get("categories") or {}, champion.get("categories") or {}
    deltas = {
        k: round(new[k] - old[k], 4)
        for k in config.tracked
        if new.get(k) is not None and old.get(k) is not None
    }
    mmbase, best = challenger.get("mmbase"), champion.get("mmbase")
    if mmbase is not None and best is not None:
        deltas["mmbase"] = round(mmbase - best, 4)
    blocking = []
    if mmbase is None:
        blocking.append("the challenger has no MMBase")
    elif best is not None and mmbase - best <= EPSILON:
        blocking.append(f"MMBase {mmbase:.2f} did not improve on {best:.2f}")
    for key in config.tracked:
        if old.get(key) is not None and new.get(key) is None:
            blocking.append(f"{key} has no score (champion {old[key]:.2f})")
        elif key in deltas and -deltas[key] > config.tolerance + EPSILON:
            blocking.append(f"{key} dropped {-deltas[key]:.2f} points (tolerance {config.tolerance:.2f})")
    if blocking:
        return False, "; ".join(blocking), deltas
    gain = "" if best is None else f" (+{mmbase - best:.2f})"
    return (
        True,
        f"MMBase {mmbase:.2f} beats {_fmt(best)}{gain}; no tracked category dropped by more than {config.tolerance:.2f} points",
        deltas,
    )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def gate(name: str, version: int, config: GateConfig | None = None) -> Decision:
    """Make `version` the challenger and promote it to champion when the rule says so; the decision is
    recorded on the version, and a version already decided gets its recorded decision back."""
    client = tracking.client()
    current = _version(client, name, version)
    if f"{GATE}promoted" in current.tags:
        return Decision.from_tags(int(version), current.tags)
    client.set_registered_model_alias(name, CHALLENGER, str(version))
    return _decide_and_record(client, name, current, config or load_gate_config(), force=False)


def promote(name: str, version: int, force: bool = False) -> Decision:
    """Run the rule now for `version` against the current champion and promote it when it passes; with
    `force`, promote it whatever the rule says (recorded as forced, with the rule's reason)."""
    client = tracking.client()
    current = _version(client, name, version)
    return _decide_and_record(client, name, current, load_gate_config(), force=force)


def _decide_and_record(client, name: str, current: Any, config: GateConfig, force: bool) -> Decision:
    version = int(current.version)
    champion = _champion(client, name)
    if champion is not None and int(champion.version) == version:
        return Decision(True, f"version {version} is the champion already", version, version)
    promoted, reason, deltas = decide(
        scores_from_tags(current.tags), None if champion is None else scores_from_tags(champion.tags), config
    )
    decision = Decision(
        promoted or force,
        reason,
        version,
        None if champion is None else int(champion.version),
        deltas,
        forced=force and not promoted,
    )
    if decision.promoted:
        client.set_registered_model_alias(name, CHAMPION, str(version))
    for key, value in decision.as_tags().items():
        client.set_model_version_tag(name, str(version), key, value)
    stale = [k for k in current.tags if k.startswith(f"{GATE}delta.") and k not in decision.as_tags()]
    for key in stale:  # deltas of an earlier decision against another champion
        client.delete_model_version_tag(name, str(version), key)
    return decision


def _champion(client, name: str) -> Any | None:
    aliases = client.get_registered_model(name).aliases
    if CHAMPION not in aliases:
        return None
    return client.get_model_version(name, str(aliases[CHAMPION]))


def _version(client, name: str, version: int) -> Any:
    """The model version, or a one-line UserError naming what exists."""
    check_name(name)
    found = {int(v.version): v for v in versions(client, name)}
    if not found:
        raise UserError(f"no registered model {name!r} at {tracking.tracking_uri()}")
    if int(version) not in found:
        known = ", ".join(str(v) for v in sorted(found))
        raise UserError(f"model {name!r} has no version {version} (versions: {known})")
    return found[int(version)]
