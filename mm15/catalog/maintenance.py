"""Catalog housekeeping: remove Parquet files under the data folder that no snapshot references.

Such orphans are left when a writer dies between writing a data file and committing it (a kill
during a commit). The catalog's metadata is a single-writer DuckDB file, so while a writer holds
it, any data file the metadata does not know is an orphan; each commit removes them, and
`mm15 catalog vacuum` does it on demand.
"""

from __future__ import annotations

from mm15.catalog.lake import Catalog


def remove_orphaned_files(catalog: Catalog) -> list[str]:
    """Delete data files that the catalog does not reference; return their paths."""
    if catalog.read_only:
        raise ValueError("removing orphaned files needs a writable catalog")
    rows = catalog.con.execute("CALL ducklake_delete_orphaned_files('lake', cleanup_all => true)").fetchall()
    return sorted(r[0] for r in rows)
