"""The SQLite metadata file of a local catalog: created by the first writer, or migrated from the DuckDB
file of an older home (meta.ducklake) on first use, every snapshot kept.

DuckLake's metadata is ordinary tables (ducklake_snapshot, ducklake_data_file ...). The migration lets
DuckLake create them in a new SQLite file, copies the old file's rows into them, checks through DuckLake
that both files give the same snapshots and rows, and only then puts the new file in place; the old one
stays beside it as meta.ducklake.migrated. One process at a time does this (a file lock); a crash
before the swap leaves the home as it was, and the next open starts again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sqlite3
from pathlib import Path

import duckdb

from mm15.catalog.backend import LEGACY_FILE, Location, legacy_location, sql_string
from mm15.catalog.connection import connect
from mm15.errors import UserError
from mm15.locks import exclusive_file

SETUP_LOCK = ".meta.lock"  # in the catalog folder: held while the metadata file is created or migrated
MIGRATED_SUFFIX = ".migrated"  # the old DuckDB file, kept as a backup


def prepare_sqlite(root: Path, location: Location, *, create: bool) -> None:
    """Make sure the SQLite metadata file of `location` exists: migrated from the home's old DuckDB file
    if it has one, else new (only when `create`: readers of a missing catalog get a UserError)."""
    meta, legacy = Path(location.metadata), root / LEGACY_FILE
    if meta.exists() and not legacy.exists():
        return
    if not meta.exists() and not legacy.exists() and not create:
        raise UserError(f"no catalog at {root}: run `mm15 curate` first (or set MM15_HOME)")
    try:
        root.mkdir(parents=True, exist_ok=True)
        with exclusive_file(root / SETUP_LOCK):
            if not meta.exists():  # else another process did it while this one waited
                building = meta.with_name(meta.name + ".building")
                _remove(building)
                _initialize(dataclasses.replace(location, metadata=str(building)))
                if legacy.exists():
                    _migrate(root, dataclasses.replace(location, metadata=str(building)))
                _checkpoint(str(building))
                _remove(building, side_files_only=True)
                os.replace(building, meta)
            if legacy.exists():  # migrated, now or by a run that stopped before renaming it
                for old in (legacy, legacy.with_name(legacy.name + ".wal")):
                    if old.exists():
                        os.replace(old, old.with_name(old.name + MIGRATED_SUFFIX))
    except OSError as e:
        raise UserError(f"cannot set up the catalog metadata in {root} ({e.strerror or e})") from None


def _remove(path: Path, side_files_only: bool = False) -> None:
    """Remove a SQLite file and its write-ahead log and shared memory files (only those if told)."""
    for suffix in ("-wal", "-shm") if side_files_only else ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def _initialize(location: Location) -> None:
    """A new SQLite file with DuckLake's (empty) metadata tables. Write-ahead logging lets readers go on
    while a writer commits, and a writer commit while readers read."""
    with contextlib.closing(sqlite3.connect(location.metadata)) as db:
        db.execute("PRAGMA journal_mode = WAL")
    con, _ = connect(location)
    try:
        con.execute(location.attach_statement(read_only=False))
    finally:
        con.close()


def _checkpoint(path: str) -> None:
    """Fold the write-ahead log into the file, so that the file alone can be renamed."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _migrate(root: Path, target: Location) -> None:
    """Copy the metadata tables of the home's DuckDB file into the new SQLite file `target`, then check."""
    legacy = legacy_location(root)
    if legacy.data_path != target.data_path:
        raise UserError(
            f"the catalog at {root} has metadata in the old format ({LEGACY_FILE}) and its data in "
            f"{legacy.data_path}: unset MM15_DATA_PATH and open it once to migrate it"
        )
    con, _ = connect(target)
    try:
        con.execute("SET TimeZone = 'UTC'")  # snapshot times are written as text: keep their instant
        con.execute(f"ATTACH {sql_string(legacy.metadata)} AS old (READ_ONLY)")
        con.execute(f"ATTACH {sql_string(target.metadata)} AS new (TYPE sqlite)")
        new = {r[0] for r in con.execute(_TABLES, ["new"]).fetchall()}
        con.execute("BEGIN TRANSACTION")
        for (table,) in con.execute(_TABLES, ["old"]).fetchall():
            if table in new:
                con.execute(f'DELETE FROM new."{table}"')
                con.execute(f'INSERT INTO new."{table}" BY NAME SELECT * FROM old."{table}"')
            else:  # a table this DuckLake version creates on demand (inlined data ...)
                con.execute(f'CREATE TABLE new."{table}" AS SELECT * FROM old."{table}"')
        con.execute("COMMIT")
    except duckdb.Error as e:
        raise UserError(
            f"migrating the catalog metadata in {root} failed: {str(e).splitlines()[0]}"
        ) from None
    finally:
        con.close()
    _check_same(root, legacy, target)


_TABLES = "SELECT table_name FROM duckdb_tables() WHERE database_name = ? ORDER BY table_name"


def _check_same(root: Path, legacy: Location, target: Location) -> None:
    """Through DuckLake's own reads: the same snapshots, and as many rows in every table."""
    con, _ = connect(target)
    try:
        con.execute(legacy.attach_statement(read_only=True, alias="old"))
        con.execute(target.attach_statement(read_only=True, alias="new"))
        tables = [r[0] for r in con.execute(_TABLES, ["old"]).fetchall()]
        checks = ["SELECT * FROM {}.snapshots() ORDER BY snapshot_id"]
        checks += [f'SELECT count(*) FROM {{}}."{t}"' for t in tables]
        differs = [
            c
            for c in checks
            if con.execute(c.format("old")).fetchall() != con.execute(c.format("new")).fetchall()
        ]
    except duckdb.Error as e:
        raise UserError(
            f"checking the migrated catalog metadata in {root} failed: {str(e).splitlines()[0]}"
        ) from None
    finally:
        con.close()
    if differs:
        raise UserError(f"migrating the catalog metadata in {root} failed: {differs[0].format('…')} differs")
