"""What a curation run stages: shards of the synthetic sources and of the configured real sources."""

from __future__ import annotations

from pathlib import Path

from mm15.catalog.sources import SourceConfig, load_synthetic_config
from mm15.catalog.staging import ShardSpec, file_fingerprint
from mm15.errors import UserError


def synthetic_shards(preset: str, catalogs: Path | None = None) -> list[ShardSpec]:
    """Shards of `shard_size` samples of every synthetic source and split of `preset` (synthetic.yaml)."""
    from mm15.data.synthetic import SYNTHETIC_SOURCES

    config = load_synthetic_config(catalogs)
    chosen = config.preset(preset)
    return [
        ShardSpec(
            source=source,
            split=split,
            category=SYNTHETIC_SOURCES[source],
            start=start,
            count=min(config.shard_size, total - start),
            seed=config.seed,
            image_size=chosen.image_size,
        )
        for source, sizes in chosen.sources.items()
        for split, total in sizes.model_dump().items()
        for start in range(0, total, config.shard_size)
    ]


def source_shards(source: SourceConfig) -> list[ShardSpec]:
    """One shard per input file, or per part of a large JSON Lines file (staged in parallel); the file's
    content hash is part of the shard key."""
    from mm15.data.adapters import list_shards, shard_parts

    if not source.path.exists():
        raise UserError(f"{source.path} does not exist")
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
            fingerprint=fingerprint,
            start=start,
            count=count,
        )
        for f, fingerprint in ((f, file_fingerprint(f)) for f in files)
        for start, count in shard_parts(source.format, f)
    ]


def plan_shards(preset: str | None, sources: list[SourceConfig], catalog_root: Path) -> list[ShardSpec]:
    """Shards to stage: synthetic ones for `preset` plus every file of `sources`, less those already
    committed to the catalog under `catalog_root`."""
    from mm15.catalog.commit import committed_shards
    from mm15.catalog.lake import catalog_exists, open_catalog

    specs = synthetic_shards(preset) if preset else []
    for source in sources:
        specs += source_shards(source)
    if catalog_exists(catalog_root):
        with open_catalog(catalog_root) as catalog:
            done = committed_shards(catalog)
        specs = [s for s in specs if s.key not in done]
    return specs
