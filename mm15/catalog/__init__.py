"""The catalog: Parquet data under DuckLake snapshots, queried with DuckDB."""

from mm15.catalog.lake import Catalog, open_catalog

__all__ = ["Catalog", "open_catalog"]
