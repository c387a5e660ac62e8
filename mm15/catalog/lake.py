"""Open the catalog: a DuckLake (Parquet data + DuckDB metadata) with numbered, immutable snapshots.

Writers open it read-write and commit one snapshot per transaction. Readers open it read-only,
optionally at an old snapshot, with the connection locked down so that no statement they run can
change the catalog or touch files outside it (DuckDB spills to a folder of its own inside the home, not
to `./.tmp`). The catalog records the absolute path of its data folder; every open overrides it with the
folder next to the metadata file, so a home that is copied or moved keeps working.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from mm15 import paths
from mm15.catalog import schema
from mm15.errors import UserError

META_FILE = "meta.ducklake"
DATA_DIR = "data"
READ_STATEMENTS = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
TEMP_DIR = "tmp"  # next to the catalog folder (MM15_HOME/tmp): where read-only connections spill
COUNT_UP_TO = 1_000_000  # query_page counts the rows it does not return up to this many
FETCH_CHUNK = 10_000  # rows fetched at a time while counting
WRITER_MEMORY_LIMIT = "384MB"  # DuckDB memory of a writing connection (a commit); beyond it, it spills
# The DuckDB metadata file admits one writer or several readers at a time: an open that finds it taken
# by another process (a commit, or a training run reading) waits this long, in seconds, before failing.
WAIT_ENV, WAIT_DEFAULT = "MM15_CATALOG_WAIT", 600.0


def sql_string(value: object) -> str:
    """A SQL string literal, for the few statements (LOAD, ATTACH) that take no parameters."""
    return "'" + str(value).replace("'", "''") + "'"


def ducklake_extension() -> str:
    """Path of the DuckLake extension binary shipped by the `duckdb-extension-ducklake` package (no download)."""
    import duckdb_extension_ducklake

    found = sorted(Path(duckdb_extension_ducklake.__path__[0]).rglob("*.duckdb_extension"))
    if not found:
        raise UserError("the DuckLake extension binary is missing: reinstall duckdb-extension-ducklake")
    return str(found[-1])


@dataclass(frozen=True)
class Page:
    """The first rows of a query's result, and how many rows came after them."""

    columns: list[str]
    rows: list[tuple]
    more: int = 0  # rows after `rows` (counted up to a bound)
    more_exact: bool = True  # False: there were more than `more` rows after `rows`


class Catalog:
    """A connection to the catalog. Tables: samples, images, rejects, ingests, shards."""

    def __init__(self, root: Path, con: duckdb.DuckDBPyConnection, read_only: bool):
        self.root = root
        self.con = con
        self.read_only = read_only

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
        try:
            return self.con.execute(sql, params or [])
        except duckdb.Error as e:
            raise UserError(f"SQL: {_first_line(e)}") from None

    def arrow(self, sql: str, params: list | None = None) -> pa.Table:
        return self.con.execute(sql, params or []).to_arrow_table()


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def catalog_exists(root: Path | None = None) -> bool:
    """Whether a catalog has been created under `root` (default MM15_HOME/catalog)."""
    return ((Path(root) if root else paths.catalog_dir()) / META_FILE).exists()


def _create_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the missing tables in one snapshot (so a new catalog's first curation is snapshot 2)."""
    existing = {
        r[0]
        for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = 'lake'").fetchall()
    }
    missing = {name: s for name, s in schema.TABLES.items() if name not in existing}
    if not missing:
        return
    con.execute("BEGIN TRANSACTION")
    try:
        for name, table_schema in missing.items():
            con.register("_empty", table_schema.empty_table())
            con.execute(f"CREATE TABLE lake.{name} AS SELECT * FROM _empty")
            con.unregister("_empty")
        message = f"created the catalog tables ({', '.join(missing)})"
        con.execute("CALL lake.set_commit_message('mm15', ?, extra_info => '{}')", [message])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


class _InUse(UserError):
    """Another process holds the metadata file."""


def _attach_waiting(root: Path, read_only: bool, snapshot: int | None) -> duckdb.DuckDBPyConnection:
    """`_attach`, retried with backoff while another process holds the catalog (up to MM15_CATALOG_WAIT
    seconds): overlapping runs take turns instead of failing each other."""
    deadline = time.monotonic() + float(os.environ.get(WAIT_ENV, WAIT_DEFAULT))
    pause = 0.05
    while True:
        try:
            return _attach(root, read_only, snapshot)
        except _InUse as e:
            if time.monotonic() + pause > deadline:
                raise UserError(f"{e} (waited {os.environ.get(WAIT_ENV, WAIT_DEFAULT)} s)") from None
            time.sleep(pause)
            pause = min(pause * 2, 2.0)


def _attach(root: Path, read_only: bool, snapshot: int | None) -> duckdb.DuckDBPyConnection:
    meta, data = root / META_FILE, root / DATA_DIR
    if read_only and not meta.exists():
        raise UserError(f"no catalog at {root}: run `mm15 curate` first (or set MM15_HOME)")
    if snapshot is not None and snapshot < 0:
        raise UserError(f"no snapshot {snapshot}: snapshot ids are 0 or more (`mm15 catalog snapshots`)")
    root.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        con.execute(f"LOAD {sql_string(ducklake_extension())}")
        # OVERRIDE_DATA_PATH: the data folder is the one next to the metadata file, wherever the home is now
        # (the catalog keeps the absolute path it was created with; its files are relative to it).
        options = [f"DATA_PATH {sql_string(f'{data}/')}", "OVERRIDE_DATA_PATH true"]
        if read_only:
            options.append("READ_ONLY")
            if snapshot is not None:
                options.append(f"SNAPSHOT_VERSION {int(snapshot)}")
        else:
            options.append("DATA_INLINING_ROW_LIMIT 0")  # every row in Parquet, none in the metadata file
        con.execute(f"ATTACH {sql_string(f'ducklake:{meta}')} AS lake ({', '.join(options)})")
    except duckdb.Error as e:
        con.close()
        message = _first_line(e)
        if "lock" in message.lower():
            raise _InUse(
                f"the catalog at {root} is in use by another process (a curation writing?)"
            ) from None
        if snapshot is not None:
            raise UserError(
                f"no snapshot {snapshot} in the catalog (`mm15 catalog snapshots` lists them): {message}"
            ) from None
        raise
    return con


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
) -> Iterator[Catalog]:
    """Open the catalog under `root` (default MM15_HOME/catalog); read-only unless told otherwise.
    Read-only connections can be bounded: `memory_limit` and `temp_limit` (the most they spill to disk)
    are DuckDB sizes such as "1GB"; a query that needs more fails with a UserError."""
    root = Path(root) if root else paths.catalog_dir()
    con = _attach_waiting(root, read_only, snapshot)
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
            con.execute("SET allowed_directories = [?]", [str((root / DATA_DIR).resolve()) + "/"])
            con.execute("SET enable_external_access = false")
            con.execute("SET lock_configuration = true")
        else:
            # A commit's working tables spill to the home's tmp/ rather than grow with the commit.
            con.execute("SET temp_directory = ?", [_spill_directory(root)])
            con.execute("SET memory_limit = ?", [memory_limit or WRITER_MEMORY_LIMIT])
            _create_tables(con)
            con.execute("USE lake")
        yield Catalog(root, con, read_only)
    finally:
        con.close()
