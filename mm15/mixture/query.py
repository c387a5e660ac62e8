"""The DuckDB side of mixture building: queries over the catalog's `samples` relation.

Only light columns are read (category, source, split, hash64; sample_id and n_images for the rows
actually picked), never `messages` or `meta`. Rows of one (category, source) are put in a canonical
order by `hash64`, so sampling does not depend on how the catalog happens to be stored; the rare rows
sharing a `hash64` are told apart by their rank in `sample_id` order (`dup`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import duckdb
import numpy as np
import pyarrow as pa

Pair = tuple[str, str]  # (category, source)

_SOURCES = "_mm15_mixture_sources"
_PICKS = "_mm15_mixture_picks"


def train_sizes(con: duckdb.DuckDBPyConnection) -> dict[Pair, int]:
    """Train rows per (category, source), sorted by category then source."""
    rows = con.execute(
        """
        SELECT category, source, count(*), count(*) - count(hash64)
        FROM samples WHERE split = 'train'
        GROUP BY category, source ORDER BY category, source
        """
    ).fetchall()
    unhashed = [f"{cat}/{src}" for cat, src, _, missing in rows if missing]
    if unhashed:
        raise ValueError(f"catalog rows without hash64 in: {', '.join(unhashed)}")
    return {(cat, src): n for cat, src, n, _ in rows}


def fetch_row_keys(con: duckdb.DuckDBPyConnection, pairs: Sequence[Pair]) -> tuple[np.ndarray, np.ndarray]:
    """`(group, hash64)` of every train row of `pairs`, ordered by group (index into pairs), then hash64."""
    groups = _pairs_table(pairs)
    with _registered(con, _SOURCES, groups):
        table = con.execute(
            f"""
            SELECT g.gid, s.hash64
            FROM samples s JOIN {_SOURCES} g ON s.category = g.category AND s.source = g.source
            WHERE s.split = 'train'
            ORDER BY g.gid, s.hash64
            """
        ).to_arrow_table()
    gid = table.column("gid").to_numpy().astype(np.int32, copy=False)
    return gid, table.column("hash64").to_numpy().astype(np.int64, copy=False)


def fetch_picked(con: duckdb.DuckDBPyConnection, pairs: Sequence[Pair], picks: pa.Table) -> pa.Table:
    """`row, sample_id, n_images` of the picked rows, in no particular order.

    `picks` has columns gid (index into pairs), hash64, dup and row (a unique id of the pick).
    """
    groups = _pairs_table(pairs)
    with _registered(con, _SOURCES, groups), _registered(con, _PICKS, picks):
        return con.execute(
            f"""
            WITH hit AS (
                SELECT g.gid, s.hash64, s.sample_id, s.n_images,
                       row_number() OVER (PARTITION BY g.gid, s.hash64 ORDER BY s.sample_id) - 1 AS dup
                FROM samples s JOIN {_SOURCES} g ON s.category = g.category AND s.source = g.source
                WHERE s.split = 'train' AND s.hash64 IN (SELECT hash64 FROM {_PICKS})
            )
            SELECT p.row, hit.sample_id, hit.n_images
            FROM hit JOIN {_PICKS} p ON hit.gid = p.gid AND hit.hash64 = p.hash64 AND hit.dup = p.dup
            """
        ).to_arrow_table()


def _pairs_table(pairs: Sequence[Pair]) -> pa.Table:
    return pa.table(
        {
            "gid": pa.array(range(len(pairs)), pa.int32()),
            "category": pa.array([c for c, _ in pairs], pa.string()),
            "source": pa.array([s for _, s in pairs], pa.string()),
        }
    )


@contextmanager
def _registered(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> Iterator[None]:
    con.register(name, table)
    try:
        yield
    finally:
        con.unregister(name)
