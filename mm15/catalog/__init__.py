"""The catalog: Parquet data under DuckLake snapshots, queried with DuckDB."""

from mm15.catalog.lake import Catalog, catalog_exists, open_catalog

__all__ = ["Catalog", "catalog_exists", "open_catalog"]
