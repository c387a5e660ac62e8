"""Open the catalog: a DuckLake (Parquet data + metadata tables) with numbered, immutable snapshots.

Writers open it read-write and commit one snapshot per transaction. Readers open it read-only,
optionally at an old snapshot, with the connection locked down so that no statement they run can
change the catalog or touch files or databases outside it (DuckDB spills to a folder of its own inside
the home, not to `./.tmp`). Where the metadata and data live (a SQLite file and a folder in the home by
default, PostgreSQL and object storage when shared) is `mm15.catalog.backend`'s business.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from mm15 import paths
from mm15.catalog import backend, connection, schema, seal
from mm15.catalog.backend import Location, sql_string
from mm15.catalog.migrate import prepare_sqlite
from mm15.errors import UserError

__all__ = ["Catalog", "Page", "catalog_exists", "open_catalog", "sql_string"]
READ_STATEMENTS = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
TEMP_DIR = "tmp"  # next to the catalog folder (MM15_HOME/tmp): where read-only connections spill
COUNT_UP_TO = 1_000_000  # query_page counts the rows it does not return up to this many
FETCH_CHUNK = 10_000  # rows fetched at a time while counting
WRITER_MEMORY_LIMIT = "384MB"  # DuckDB memory of a writing connection (a commit); beyond it, it spills


@dataclass(frozen=True)
class Page:
    """The first rows of a query's result, and how many rows came after them."""

    columns: list[str]
    rows: list[tuple]
    more: int = 0  # rows after `rows` (counted up to a bound)
    more_exact: bool = True  # False: there were more than `more` rows after `rows`


class Catalog:
    """A connection to the catalog. Tables: samples, images, rejects, ingests, shards."""

    def __init__(
        self,
        root: Path,
        con: duckdb.DuckDBPyConnection,
        read_only: bool,
        location: Location | None = None,
        refused: frozenset[str] = seal.ALWAYS_REFUSED,
    ):
        self.root = root
        self.con = con
        self.read_only = read_only
        self.location = location or backend.locate(root)
        self.refused = refused  # functions read-only statements may not call

    def close(self) -> None:
        self.con.close()

    def snapshot_id(self) -> int:
        """The snapshot this connection sees."""
        return int(self.con.execute("SELECT id FROM lake.current_snapshot()").fetchone()[0])

    def snapshots(self) -> list[dict]:
        rows = self.con.execute(
            "SELECT snapshot_id, snapshot_time, commit_message, commit_extra_info FROM lake.snapshots() "
            "WHERE author = 'mm15' ORDER BY snapshot_id"
        ).fetchall()
        return [
            {
                "snapshot": s,
                "time": t.isoformat(timespec="seconds"),
                "message": m,
                "info": json.loads(x or "{}"),
            }
            for s, t, m, x in rows
        ]

    def category_counts(self) -> list[tuple[str, int, int, int]]:
        """(category, train rows, eval rows, all rows) for every category, in name order."""
        return self.con.execute(
            "SELECT category, count(*) FILTER (split = 'train'), count(*) FILTER (split = 'eval'), count(*) "
            "FROM lake.samples GROUP BY 1 ORDER BY 1"
        ).fetchall()

    def reject_counts(self) -> list[tuple[str, int]]:
        """(reason, rows) for every quarantine reason, most frequent first."""
        return self.con.execute(
            "SELECT reason, count(*) FROM lake.rejects GROUP BY 1 ORDER BY 2 DESC, 1"
        ).fetchall()

    def query(self, sql: str, params: list | None = None) -> tuple[list[str], list[tuple]]:
        """Run one read statement (SELECT, EXPLAIN ...): (column names, every row)."""
        page = self.query_page(sql, params)
        return page.columns, page.rows

    def query_page(
        self,
        sql: str,
        params: list | None = None,
        *,
        limit: int | None = None,
        count_up_to: int = COUNT_UP_TO,
    ) -> Page:
        """Run one read statement and keep its first `limit` rows (all of them if None); the rows after
        those are fetched as a stream and counted, without keeping them, up to `count_up_to`.
        Any DuckDB error (syntax, binding, out of memory ...) is a UserError."""
        if limit is not None and limit < 0:
            raise UserError(f"the row limit must be 0 or more (got {limit})")
        cursor = self._execute(sql, params)
        try:
            columns = [d[0] for d in cursor.description or []]
            if limit is None:
                return Page(columns, cursor.fetchall())
            rows = cursor.fetchmany(limit) if limit else []
            more = 0
            while more <= count_up_to:
                chunk = cursor.fetchmany(min(FETCH_CHUNK, count_up_to + 1 - more))
                if not chunk:
                    break
                more += len(chunk)
        except duckdb.Error as e:
            raise UserError(f"SQL: {_first_line(e)}") from None
        if more > count_up_to:
            return Page(columns, rows, more=count_up_to, more_exact=False)
        return Page(columns, rows, more=more)

    def _execute(self, sql: str, params: list | None) -> duckdb.DuckDBPyConnection:
        """Check that `sql` is one statement this connection may run, and start it."""
        try:
            statements = duckdb.extract_statements(sql) if sql.strip() else []
        except duckdb.Error as e:
            raise UserError(f"SQL: {_first_line(e)}") from None
        if len(statements) != 1:
            raise UserError(f"give exactly one SQL statement (got {len(statements)})")
        if self.read_only and statements[0].type not in READ_STATEMENTS:
            raise UserError(
                f"the catalog is read-only here: {statements[0].type.name} statements are refused"
            )
        if self.read_only and (call := seal.refused_call(self.con, sql, self.refused)):
            raise UserError(f"the catalog is read-only here: {call}() is refused")
        try:
            return self.con.execute(sql, params or [])
        except duckdb.Error as e:
            raise UserError(f"SQL: {_first_line(e)}") from None

    def arrow(self, sql: str, params: list | None = None) -> pa.Table:
        return self.con.execute(sql, params or []).to_arrow_table()


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def catalog_exists(root: Path | None = None) -> bool:
    """Whether the catalog of `root` (default MM15_HOME/catalog), or the shared one the environment
    names, has been created."""
    root = Path(root) if root else paths.catalog_dir()
    location = backend.locate(root)
    if location.kind == "postgres":
        return connection.postgres_catalog_exists(location)
    return Path(location.metadata).exists() or (root / backend.LEGACY_FILE).exists()


def _create_tables(con: duckdb.DuckDBPyConnection, data_path: str) -> None:
    """Create the missing tables in one snapshot (so a new catalog's first curation is snapshot 2). A
    first writer that loses the race to another one tries again, and finds the tables there."""

    def attempt() -> None:
        with connection.transaction(con, data_path):
            query = "SELECT table_name FROM duckdb_tables() WHERE database_name = 'lake'"
            existing = {r[0] for r in con.execute(query).fetchall()}
            missing = {name: s for name, s in schema.TABLES.items() if name not in existing}
            for name, table_schema in missing.items():
                con.register("_empty", table_schema.empty_table())
                con.execute(f"CREATE TABLE lake.{name} AS SELECT * FROM _empty")
                con.unregister("_empty")
            if missing:
                message = f"created the catalog tables ({', '.join(missing)})"
                con.execute("CALL lake.set_commit_message('mm15', ?, extra_info => '{}')", [message])

    connection.retrying_conflicts(attempt)


def _spill_directory(root: Path) -> str:
    """A folder of this connection's own for DuckDB to spill to, inside the home (MM15_HOME/tmp/duckdb-*):
    DuckDB creates it when it first spills and removes it when the connection closes. Empty (no spilling)
    where the home cannot be written."""
    parent = root.resolve().parent / TEMP_DIR
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        return ""
    return str(parent / f"duckdb-{os.getpid()}-{secrets.token_hex(4)}")


@contextmanager
def open_catalog(
    root: Path | None = None,
    *,
    read_only: bool = True,
    snapshot: int | None = None,
    memory_limit: str | None = None,
    temp_limit: str | None = None,
    location: Location | None = None,
) -> Iterator[Catalog]:
    """Open the catalog under `root` (default MM15_HOME/catalog), or the one MM15_CATALOG_URL names
    (`location` overrides both); read-only unless told otherwise.
    Read-only connections can be bounded: `memory_limit` and `temp_limit` (the most they spill to disk)
    are DuckDB sizes such as "1GB"; a query that needs more fails with a UserError."""
    root = Path(root) if root else paths.catalog_dir()
    location = location or backend.locate(root)
    if location.kind == "sqlite":  # created by the first writer, or migrated from an older home's file
        prepare_sqlite(root, location, create=not read_only)
    con, refused = connection.attach_waiting(root, location, read_only, snapshot)
    try:
        if read_only:
            # Lock the connection down: it can read the catalog's own files and nothing else. DuckDB may
            # also read its temporary folder (by default ./.tmp): give it one of its own inside the home.
            con.execute("USE lake")
            con.execute("SET temp_directory = ?", [_spill_directory(root)])
            if memory_limit is not None:
                con.execute("SET memory_limit = ?", [memory_limit])
            if temp_limit is not None:
                con.execute("SET max_temp_directory_size = ?", [temp_limit])
            seal.seal(con, location)
        else:
            # A commit's working tables spill to the home's tmp/ rather than grow with the commit.
            con.execute("SET temp_directory = ?", [_spill_directory(root)])
            con.execute("SET memory_limit = ?", [memory_limit or WRITER_MEMORY_LIMIT])
            _create_tables(con, location.data_path)
            con.execute("USE lake")
        yield Catalog(root, con, read_only, location, refused)
    finally:
        con.close()
