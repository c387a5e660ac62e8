"""Catalog housekeeping: remove Parquet files under the data folder that no snapshot references.

Such orphans are left when a writer dies between writing a data file and committing it (a kill
during a commit). Several processes, on several machines with a shared catalog, may commit at once,
and the files of a commit still in flight are referenced by no snapshot either: only files older than
any commit runs (ORPHAN_MIN_AGE_S) are orphans for sure. Each commit removes those, and
`mm15 catalog vacuum` does it on demand.
"""

from __future__ import annotations

from mm15.catalog.lake import Catalog

ORPHAN_MIN_AGE_S = 24 * 3600.0  # seconds: an unreferenced file this old belongs to no running commit


def remove_orphaned_files(catalog: Catalog, min_age_s: float = ORPHAN_MIN_AGE_S) -> list[str]:
    """Delete data files that the catalog does not reference and that were last written more than
    `min_age_s` seconds ago; return their paths."""
    if catalog.read_only:
        raise ValueError("removing orphaned files needs a writable catalog")
    rows = catalog.con.execute(
        "CALL ducklake_delete_orphaned_files('lake', older_than => now() - to_seconds(?))", [float(min_age_s)]
    ).fetchall()
    return sorted(r[0] for r in rows)
