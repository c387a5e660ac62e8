"""Build a mixture manifest from a catalog snapshot: the spec's shares, made into training positions.

DuckDB filters and groups the catalog and hands back only (source group, hash64) of the rows the
spec needs; numpy lays out the positions (mm15.mixture.layout) and draws rows (mm15.mixture.draw);
DuckDB then looks up sample_id for the rows picked. Same catalog rows, spec, seed and sample count
give the same manifest, byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from mm15.mixture.draw import draw_rows, seeded_rng, source_weights
from mm15.mixture.layout import component_layout, largest_remainder
from mm15.mixture.manifest import MANIFEST_SCHEMA, ROW_GROUP_ROWS, ContentHasher, write_manifest
from mm15.mixture.query import Pair, fetch_picked, fetch_row_keys, train_sizes
from mm15.mixture.spec import (
    Component,
    MixtureSpec,
    catalog_problems,
    component_shares,
    expected_shares,
    spec_to_dict,
)
from mm15.mixture.summary import ManifestSummary, Share, summary_path, write_summary


@dataclass(frozen=True)
class _Rows:
    """The train rows a build draws from: groups `pairs`, and per row its group and hash64, in canonical
    order (group, then hash64), so a row is known by its index."""

    pairs: list[Pair]
    sizes: np.ndarray  # rows per group
    gid: np.ndarray
    hash64: np.ndarray

    @property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.sizes)])


@dataclass(frozen=True)
class _Manifest:
    """What the manifest's rows are made of; `chunks()` makes them one row group at a time."""

    sample_id: pa.Array  # of the distinct rows drawn
    n_images: pa.Array
    picked: np.ndarray  # per position: index into sample_id and n_images
    gid: np.ndarray  # per position: index into pairs
    repeat: np.ndarray  # per position
    pairs: list[Pair]
    batch_size: int

    def chunks(self) -> Iterator[pa.Table]:
        categories = pa.array([c for c, _ in self.pairs], pa.string())
        sources = pa.array([s for _, s in self.pairs], pa.string())
        for start in range(0, len(self.gid), ROW_GROUP_ROWS):
            stop = min(start + ROW_GROUP_ROWS, len(self.gid))
            positions = np.arange(start, stop, dtype=np.int64)
            picked, gid = pa.array(self.picked[start:stop]), pa.array(self.gid[start:stop])
            columns = {
                "position": positions,
                "batch": positions // self.batch_size,
                "sample_id": self.sample_id.take(picked),
                "category": categories.take(gid),
                "source": sources.take(gid),
                "repeat": self.repeat[start:stop],
                "n_images": self.n_images.take(picked),
            }
            yield pa.table(columns, schema=MANIFEST_SCHEMA)


@dataclass(frozen=True)
class _Draws:
    rows: np.ndarray  # row index of every position
    repeat: np.ndarray  # 0 on a row's first use, then its epoch
    layout: np.ndarray  # component index of every position
    expected: np.ndarray  # expected share of every group


def build_manifest(
    con: duckdb.DuckDBPyConnection, spec: MixtureSpec, *, samples: int, seed: int, snapshot: int, out: Path
) -> ManifestSummary:
    """Write the manifest of `spec` to `out` (Parquet) and its summary beside it (JSON); return the summary.

    `con` holds a `samples` relation over catalog snapshot `snapshot`; only `split = 'train'` is drawn.
    A component too small for its share is drawn with replacement, which the summary reports.
    """
    if samples < 1:
        raise ValueError(f"samples must be positive, got {samples}")
    sizes = train_sizes(con)
    problems = catalog_problems(spec, sizes)
    if problems:
        raise ValueError(f"mixture {spec.name!r} does not fit the catalog: {'; '.join(problems)}")
    shares = component_shares(spec)
    parts = [c for c in spec.components if shares[c.key] > 0]
    pairs = sorted({pair for c in parts for pair in _pairs_of(c, sizes)})
    rows = _Rows(pairs, np.array([sizes[p] for p in pairs], dtype=np.int64), *fetch_row_keys(con, pairs))
    if not np.array_equal(np.bincount(rows.gid, minlength=len(pairs)), rows.sizes):
        raise RuntimeError("the catalog changed while the manifest was built")

    draws = _draw(spec, parts, rows, samples=samples, seed=seed)
    manifest = _manifest(con, rows, draws, spec.batch_size)
    hasher = ContentHasher(MANIFEST_SCHEMA)
    for chunk in manifest.chunks():
        hasher.update(chunk)
    manifest_hash = hasher.hexdigest()
    lineage = {
        "mixture": spec.name,
        "snapshot": str(snapshot),
        "seed": str(seed),
        "manifest_hash": manifest_hash,
    }
    write_manifest(manifest.chunks(), out, lineage)
    summary = ManifestSummary(
        mixture=spec.name,
        snapshot=snapshot,
        seed=seed,
        samples=samples,
        batch_size=spec.batch_size,
        stratified=spec.stratified,
        within_category=spec.within_category,
        manifest_hash=manifest_hash,
        **_shares(spec, sizes, rows, draws),
        max_batch_deviation=_max_batch_deviation(
            draws.layout, [shares[c.key] for c in parts], spec.batch_size
        ),
        spec=spec_to_dict(spec),
    )
    write_summary(summary, summary_path(out))
    return summary


def _draw(spec: MixtureSpec, parts: list[Component], rows: _Rows, *, samples: int, seed: int) -> _Draws:
    """Lay out the components over the positions, then fill each component's positions with its rows."""
    shares = component_shares(spec)
    layout = component_layout(
        np.array([shares[c.key] for c in parts]),
        samples,
        spec.batch_size,
        stratified=spec.stratified,
        rng=seeded_rng(seed, "layout"),
    )
    gid_of = {pair: i for i, pair in enumerate(rows.pairs)}
    offsets = rows.offsets
    picked = np.empty(samples, dtype=np.int64)
    repeat = np.empty(samples, dtype=np.int32)
    expected = np.zeros(len(rows.pairs))
    for k, part in enumerate(parts):
        positions = np.flatnonzero(layout == k)
        gids = np.array([gid_of[p] for p in rows.pairs if _in(part, p)])
        weights = source_weights(rows.sizes[gids], spec.within_category, spec.temperature)
        expected[gids] = shares[part.key] * weights / weights.sum()
        counts = largest_remainder(len(positions), weights)
        drawn = [
            draw_rows(seeded_rng(seed, *rows.pairs[g]), int(rows.sizes[g]), int(n))
            for g, n in zip(gids, counts, strict=True)
        ]
        part_rows = np.concatenate([offsets[g] + r for g, (r, _) in zip(gids, drawn, strict=True)])
        part_repeat = np.concatenate([epoch for _, epoch in drawn])
        if len(gids) > 1:  # interleave the sources at random
            order = seeded_rng(seed, "interleave", part.key).permutation(len(positions))
            part_rows, part_repeat = part_rows[order], part_repeat[order]
        picked[positions], repeat[positions] = part_rows, part_repeat
    return _Draws(picked, repeat, layout, expected)


def _manifest(con: duckdb.DuckDBPyConnection, rows: _Rows, draws: _Draws, batch_size: int) -> _Manifest:
    """Look up sample_id and n_images of the distinct rows drawn, for the manifest's rows."""
    unique, inverse = np.unique(draws.rows, return_inverse=True)
    picks = pa.table(
        {
            "gid": pa.array(rows.gid[unique], pa.int32()),
            "hash64": pa.array(rows.hash64[unique], pa.int64()),
            "dup": pa.array(_dup_ranks(rows.gid, rows.hash64)[unique], pa.int64()),
            "row": pa.array(np.arange(len(unique)), pa.int64()),
        }
    )
    picked = fetch_picked(con, rows.pairs, picks)
    if picked.num_rows != len(unique):
        raise RuntimeError("the catalog changed while the manifest was built")
    where = np.empty(len(unique), dtype=np.int64)  # pick -> its index in `picked` (which is unordered)
    where[picked.column("row").to_numpy()] = np.arange(len(unique))
    return _Manifest(
        sample_id=picked.column("sample_id").combine_chunks(),
        n_images=picked.column("n_images").combine_chunks().cast(pa.int32()),
        picked=where[inverse],
        gid=rows.gid[draws.rows],
        repeat=draws.repeat,
        pairs=rows.pairs,
        batch_size=batch_size,
    )


def _shares(
    spec: MixtureSpec, sizes: dict[Pair, int], rows: _Rows, draws: _Draws
) -> dict[str, dict[str, Share]]:
    """Expected and realised shares per category (every one the spec names) and per source drawn."""
    samples = len(draws.rows)
    position_gid = rows.gid[draws.rows]
    drawn = np.bincount(position_gid, minlength=len(rows.pairs))
    unique = np.bincount(position_gid[draws.repeat == 0], minlength=len(rows.pairs))  # epoch 0 has no repeats
    gid_of = {pair: i for i, pair in enumerate(rows.pairs)}

    def share(pairs: list[Pair], expected: float) -> Share:
        ids = [gid_of[p] for p in pairs if p in gid_of]
        n, available = int(drawn[ids].sum()), sum(sizes.get(p, 0) for p in pairs)
        repetition = n / available if available else 0.0
        return Share(expected, n / samples, n, available, int(unique[ids].sum()), repetition)

    pairs_of_category: dict[str, list[Pair]] = {}
    for c in spec.components:
        pairs_of_category.setdefault(c.category, []).extend(p for p in sizes if _in(c, p))
    expected = expected_shares(spec)
    return {
        "categories": {cat: share(pairs, expected[cat]) for cat, pairs in pairs_of_category.items()},
        "sources": {
            f"{c}/{s}": share([(c, s)], float(draws.expected[i])) for i, (c, s) in enumerate(rows.pairs)
        },
    }


def _in(component: Component, pair: Pair) -> bool:
    """Whether a component draws from catalog group (category, source)."""
    category, source = pair
    return category == component.category and component.source in (None, source)


def _pairs_of(component: Component, sizes: dict[Pair, int]) -> list[Pair]:
    return [pair for pair in sizes if _in(component, pair)]


def _dup_ranks(gid: np.ndarray, hash64: np.ndarray) -> np.ndarray:
    """Rank of each row among the rows of its group sharing its hash64 (all 0 unless hashes collide)."""
    tie = (hash64[1:] == hash64[:-1]) & (gid[1:] == gid[:-1])
    if not tie.any():
        return np.zeros(len(hash64), dtype=np.int64)
    index = np.arange(len(hash64))
    run_start = np.maximum.accumulate(np.where(np.concatenate([[True], ~tie]), index, 0))
    return index - run_start


def _max_batch_deviation(layout: np.ndarray, shares: list[float], batch_size: int) -> float:
    """Largest |count - batch size * share| of one component in one batch."""
    batch = np.arange(len(layout)) // batch_size
    n_batches, k = int(batch[-1]) + 1, len(shares)
    counts = np.bincount(batch * k + layout, minlength=n_batches * k).reshape(n_batches, k)
    expected = np.bincount(batch, minlength=n_batches)[:, None] * np.asarray(shares)[None, :]
    return float(np.abs(counts - expected).max())
