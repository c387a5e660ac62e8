"""Fixtures of the catalog tests: a PostgreSQL server for the shared-catalog backend."""

from tests.postgres import postgres_catalog, postgres_server

__all__ = ["postgres_catalog", "postgres_server"]
