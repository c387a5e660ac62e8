"""Open the catalog: a DuckLake (Parquet data + DuckDB metadata) with numbered, immutable snapshots.

Writers open it read-write and commit one snapshot per transaction. Readers open it read-only,
optionally at an old snapshot, with the connection locked down so that no statement they run can
change the catalog or touch files outside it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa

from mm15 import paths
from mm15.catalog import schema
from mm15.errors import UserError

META_FILE = "meta.ducklake"
DATA_DIR = "data"
READ_STATEMENTS = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}


def _sql_string(value: object) -> str:
    """A SQL string literal, for the few statements (LOAD, ATTACH) that take no parameters."""
    return "'" + str(value).replace("'", "''") + "'"


def ducklake_extension() -> str:
    """Path of the DuckLake extension binary shipped by the `duckdb-extension-ducklake` package (no download)."""
    import duckdb_extension_ducklake

    found = sorted(Path(duckdb_extension_ducklake.__path__[0]).rglob("*.duckdb_extension"))
    if not found:
        raise UserError("the DuckLake extension binary is missing: reinstall duckdb-extension-ducklake")
    return str(found[-1])


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
        """Run one read statement (SELECT, EXPLAIN ...): (column names, rows)."""
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
            cursor = self.con.execute(sql, params or [])
        except duckdb.Error as e:
            raise UserError(f"SQL: {_first_line(e)}") from None
        columns = [d[0] for d in cursor.description or []]
        return columns, cursor.fetchall()

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


def _attach(root: Path, read_only: bool, snapshot: int | None) -> duckdb.DuckDBPyConnection:
    meta, data = root / META_FILE, root / DATA_DIR
    if read_only and not meta.exists():
        raise UserError(f"no catalog at {root}: run `mm15 curate` first (or set MM15_HOME)")
    if snapshot is not None and snapshot < 0:
        raise UserError(f"no snapshot {snapshot}: snapshot ids are 0 or more (`mm15 catalog snapshots`)")
    root.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        con.execute(f"LOAD {_sql_string(ducklake_extension())}")
        options = [f"DATA_PATH {_sql_string(f'{data}/')}"]
        if read_only:
            options.append("READ_ONLY")
            if snapshot is not None:
                options.append(f"SNAPSHOT_VERSION {int(snapshot)}")
        else:
            options.append("DATA_INLINING_ROW_LIMIT 0")  # every row in Parquet, none in the metadata file
        con.execute(f"ATTACH {_sql_string(f'ducklake:{meta}')} AS lake ({', '.join(options)})")
    except duckdb.Error as e:
        con.close()
        message = _first_line(e)
        if "lock" in message.lower():
            raise UserError(
                f"the catalog at {root} is in use by another process (a curation writing?)"
            ) from None
        if snapshot is not None:
            raise UserError(
                f"no snapshot {snapshot} in the catalog (`mm15 catalog snapshots` lists them): {message}"
            ) from None
        raise
    return con


@contextmanager
def open_catalog(
    root: Path | None = None, *, read_only: bool = True, snapshot: int | None = None
) -> Iterator[Catalog]:
    """Open the catalog under `root` (default MM15_HOME/catalog); read-only unless told otherwise."""
    root = Path(root) if root else paths.catalog_dir()
    con = _attach(root, read_only, snapshot)
    try:
        if read_only:
            # Lock the connection down: it can read the catalog's own files and nothing else.
            con.execute("USE lake")
            con.execute("SET allowed_directories = [?]", [str((root / DATA_DIR).resolve()) + "/"])
            con.execute("SET enable_external_access = false")
            con.execute("SET lock_configuration = true")
        else:
            _create_tables(con)
            con.execute("USE lake")
        yield Catalog(root, con, read_only)
    finally:
        con.close()
