"""Where manifests live: one folder per mixture under MM15_HOME/manifests, a file per build, a LATEST pointer.

    manifests/all/all-snapshot2-seed0-n16384.parquet   the manifest (lineage in its metadata)
    manifests/all/all-snapshot2-seed0-n16384.json      its summary (shares, repetition, hash)
    manifests/all/all-snapshot2-seed0-n16384.png       the share chart (written by plot_shares)
    manifests/all/LATEST                               the file name of the latest build

The same inputs name the same file, so a rebuild overwrites it with identical bytes.
"""

from __future__ import annotations

from pathlib import Path

from mm15.atomic import write_text_atomic
from mm15.catalog import open_catalog
from mm15.config import ConfigError
from mm15.mixture.build import build_manifest
from mm15.mixture.spec import known_specs, load_spec

LATEST = "LATEST"


def manifest_path(manifests_dir: Path, name: str, snapshot: int, seed: int, samples: int) -> Path:
    """The manifest of mixture `name` built from `snapshot` with `seed` and `samples` positions."""
    return Path(manifests_dir) / name / f"{name}-snapshot{snapshot}-seed{seed}-n{samples}.parquet"


def set_latest(manifest: Path) -> None:
    """Point the mixture's LATEST at `manifest` (atomically)."""
    write_text_atomic(manifest.parent / LATEST, manifest.name)


def built_mixtures(manifests_dir: Path) -> list[str]:
    """Names of the mixtures with at least one build."""
    return sorted(p.parent.name for p in Path(manifests_dir).glob(f"*/{LATEST}"))


def latest_manifest(manifests_dir: Path, name: str) -> Path:
    """The latest build of mixture `name`; a ConfigError says which mixtures exist when it has none."""
    pointer = Path(manifests_dir) / name / LATEST
    if pointer.is_file():
        return pointer.parent / pointer.read_text().strip()
    built = built_mixtures(manifests_dir)
    specs = known_specs()
    hint = (
        f"built: {', '.join(built)}"
        if built
        else "none is built yet: `mm15 mixture build NAME` or `mm15 run` builds them"
    )
    if name in specs:
        raise ConfigError(f"mixture {name!r} has not been built: run `mm15 mixture build {name}` ({hint})")
    raise ConfigError(f"no mixture {name!r}: {hint}; specs: {', '.join(specs) or 'none'}")


def build_named(
    name: str, samples: int, seed: int, snapshot: int | None, catalog_dir: Path, manifests_dir: Path
) -> dict:
    """Build the manifest of mixture `name` over a catalog snapshot (default: the latest) and make it
    the latest build. Returns the mixture, manifest path, snapshot and manifest hash."""
    spec = load_spec(name)
    with open_catalog(Path(catalog_dir), snapshot=snapshot) as catalog:
        snapshot_id = catalog.snapshot_id()
        out = manifest_path(manifests_dir, spec.name, snapshot_id, seed, samples)
        summary = build_manifest(catalog.con, spec, samples=samples, seed=seed, snapshot=snapshot_id, out=out)
    set_latest(out)
    return {
        "mixture": spec.name,
        "manifest": str(out),
        "snapshot": snapshot_id,
        "manifest_hash": summary.manifest_hash,
    }
