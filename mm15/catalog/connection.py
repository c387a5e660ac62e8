"""How a DuckDB connection reaches the catalog that `mm15.catalog.backend` locates: the extensions (from
their pip packages: nothing is downloaded at run time), the credentials, the ATTACH; and the transactions
that lose a race with another process's commit, tried again.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TypeVar

import duckdb

from mm15.catalog.backend import DATA_PATH_ENV, Location, s3_secret_options, sql_string
from mm15.catalog.seal import ALWAYS_REFUSED
from mm15.errors import DiskFullError, UserError

T = TypeVar("T")

# The pip package of each extension, and the name DuckDB expects its file to have (its entry point).
EXTENSIONS = {
    "ducklake": ("duckdb_extension_ducklake", "ducklake"),
    "sqlite": ("duckdb_extension_sqlite", "sqlite_scanner"),
    "postgres": ("duckdb_extension_postgres", "postgres_scanner"),
    "httpfs": ("duckdb_extension_httpfs", "httpfs"),
}
# An open that finds the metadata taken by another process waits this long, in seconds, before failing
# (a DuckDB file admitted one process; SQLite and PostgreSQL readers should not meet this).
WAIT_ENV, WAIT_DEFAULT = "MM15_CATALOG_WAIT", 600.0


def extension_file(name: str) -> str:
    """The extension binary of pip package EXTENSIONS[name], under the file name DuckDB expects: a link
    in a cache folder where the package ships it under another name (sqlite.duckdb_extension)."""
    package, entry = EXTENSIONS[name]
    try:
        module = __import__(package)
    except ImportError:
        raise UserError(
            f"the DuckDB {name} extension is missing: install {package.replace('_', '-')}"
        ) from None
    found = sorted(Path(module.__path__[0]).rglob("*.duckdb_extension"))
    if not found:
        raise UserError(
            f"the DuckDB {name} extension binary is missing: reinstall {package.replace('_', '-')}"
        )
    shipped = found[-1]
    if shipped.stem == entry:
        return str(shipped)
    link = _links_folder() / f"{entry}.duckdb_extension"
    if not (link.exists() and link.resolve() == shipped.resolve()):
        temporary = link.with_name(f".{entry}.{os.getpid()}")
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(shipped)
        os.replace(temporary, link)  # atomic: a process loading it never sees half a link
    return str(link)


@cache
def _links_folder() -> Path:
    """A folder of this user's for the extension links: ~/.cache/mm15/..., else a fresh temporary one."""
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    folder = cache_home / "mm15" / "duckdb-extensions" / duckdb.__version__
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    except OSError:
        return Path(tempfile.mkdtemp(prefix="mm15-duckdb-extensions-"))


def connect(location: Location) -> tuple[duckdb.DuckDBPyConnection, frozenset[str]]:
    """A DuckDB connection with the extensions and secrets that `location` needs, not yet attached; and
    the functions that a read-only query may not call (those that reach other databases)."""
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    try:
        con.execute("SET enable_progress_bar = false")  # on stdout, it would corrupt `catalog sql --json`
        con.execute(f"LOAD {sql_string(extension_file('ducklake'))}")
        extensions = tuple({"sqlite": ["sqlite"], "postgres": ["postgres"], "duckdb": []}[location.kind])
        extensions += ("httpfs",) if location.in_s3 else ()
        known = _REFUSED.get(extensions)
        before = _function_names(con) if known is None else set()
        for name in extensions:
            con.execute(f"LOAD {sql_string(extension_file(name))}")
        if known is None:
            known = _REFUSED[extensions] = frozenset(_function_names(con) - before) | ALWAYS_REFUSED
        _create_secrets(con, location)
        return con, known
    except BaseException:
        con.close()
        raise


_REFUSED: dict[tuple[str, ...], frozenset[str]] = {}  # extensions loaded -> the functions they add, refused


def _function_names(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0].lower() for r in con.execute("SELECT function_name FROM duckdb_functions()").fetchall()}


def _create_secrets(con: duckdb.DuckDBPyConnection, location: Location) -> None:
    """In-memory secrets: the PostgreSQL password, the S3 credentials. Their errors would quote them."""
    secrets = []
    if location.password is not None:
        secrets.append(("mm15_catalog_database", {"TYPE": "postgres", "PASSWORD": location.password}))
    if location.in_s3:
        secrets.append(("mm15_data", {"TYPE": "s3", **s3_secret_options(), "SCOPE": location.data_path}))
    for name, options in secrets:
        listed = ", ".join(f"{k} {v if k == 'TYPE' else sql_string(v)}" for k, v in options.items())
        try:
            con.execute(f"CREATE TEMPORARY SECRET {name} ({listed})")
        except duckdb.Error:
            raise UserError(
                f"could not set up the credentials of the {options['TYPE']} catalog storage"
            ) from None


def postgres_catalog_exists(location: Location) -> bool:
    """Whether the PostgreSQL database of `location` holds a DuckLake catalog."""
    con, _ = connect(location)
    try:
        secret = ", SECRET mm15_catalog_database" if location.password is not None else ""
        con.execute(f"ATTACH {sql_string(location.metadata)} AS meta (TYPE postgres, READ_ONLY{secret})")
        return bool(
            con.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'meta' "
                "AND table_name = 'ducklake_snapshot'"
            ).fetchone()[0]
        )
    except duckdb.Error as e:
        raise unreachable(location, e) from None
    finally:
        con.close()


def unreachable(location: Location, error: Exception) -> UserError:
    """A one-line error: the database, and libpq's reason (after DuckDB's and DuckLake's wrapping)."""
    reason = _first_line(error).rsplit(" failed: ", 1)[-1]
    return UserError(f"cannot reach the catalog database {location.shown}: {reason}")


def is_conflict(error: BaseException) -> bool:
    """Whether a failed commit lost a race with another process's commit, and can be retried on the new
    snapshot: DuckLake's "Transaction conflict" (PostgreSQL), or SQLite refusing to write from a read
    that another commit has overtaken ("database is locked")."""
    text = str(error)
    return isinstance(error, duckdb.TransactionException) and (
        "Transaction conflict" in text or "database is locked" in text
    )


def retrying_conflicts(attempt: Callable[[], T]) -> T:
    """`attempt()`, a transaction run again, after a random pause, each time it loses a commit race to
    another process (is_conflict), for up to MM15_CATALOG_WAIT seconds."""
    deadline = time.monotonic() + float(os.environ.get(WAIT_ENV, WAIT_DEFAULT))
    for tries in itertools.count(1):
        try:
            return attempt()
        except duckdb.TransactionException as error:
            if not is_conflict(error) or time.monotonic() > deadline:
                raise
            time.sleep(min(0.05 * 2**tries, 2.0) * random.uniform(0.5, 1.5))  # apart from the others
    raise AssertionError("unreachable")


def rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back the open transaction, if any: a COMMIT that failed has already ended it."""
    with contextlib.suppress(duckdb.Error):
        con.execute("ROLLBACK")


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection, data_path: str) -> Iterator[None]:
    """BEGIN, then COMMIT when the block ends (returns included), or ROLLBACK on any error; a full disk
    and a lack of memory become UserErrors."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException as error:
        rollback(con)
        if isinstance(error, duckdb.IOException) and "No space left" in str(error):
            raise DiskFullError(data_path) from None
        if isinstance(error, duckdb.OutOfMemoryException):
            raise UserError(
                f"the commit ran out of memory ({_first_line(error)}); the catalog is unchanged"
            ) from None
        raise


class _InUse(UserError):
    """Another process holds the metadata."""


def attach_waiting(
    root: Path, location: Location, read_only: bool, snapshot: int | None
) -> tuple[duckdb.DuckDBPyConnection, frozenset[str]]:
    """`_attach`, retried with backoff while another process holds the catalog (up to MM15_CATALOG_WAIT
    seconds): overlapping runs take turns instead of failing each other."""
    deadline = time.monotonic() + float(os.environ.get(WAIT_ENV, WAIT_DEFAULT))
    pause = 0.05
    while True:
        try:
            return _attach(root, location, read_only, snapshot)
        except _InUse as e:
            if time.monotonic() + pause > deadline:
                raise UserError(f"{e} (waited {os.environ.get(WAIT_ENV, WAIT_DEFAULT)} s)") from None
            time.sleep(pause)
            pause = min(pause * 2, 2.0)


def _attach(
    root: Path, location: Location, read_only: bool, snapshot: int | None
) -> tuple[duckdb.DuckDBPyConnection, frozenset[str]]:
    if snapshot is not None and snapshot < 0:
        raise UserError(f"no snapshot {snapshot}: snapshot ids are 0 or more (`mm15 catalog snapshots`)")
    if location.kind == "duckdb" and read_only and not Path(location.metadata).exists():
        raise UserError(f"no catalog at {root}: run `mm15 curate` first (or set MM15_HOME)")
    if not read_only:
        root.mkdir(parents=True, exist_ok=True)
    con, refused = connect(location)
    try:
        con.execute(location.attach_statement(read_only=read_only, snapshot=snapshot))
    except duckdb.Error as e:
        con.close()
        message = _first_line(e)
        if "lock" in message.lower():
            raise _InUse(
                f"the catalog at {location.shown} is in use by another process (a curation writing?)"
            ) from None
        if "does not exist - and creating a new DuckLake is explicitly disabled" in message:
            raise UserError(f"no catalog at {location.shown}: run `mm15 curate` first") from None
        if recorded := re.search(r'existing data path in the catalog "([^"]*)"', message):
            raise UserError(
                f"the catalog at {location.shown} keeps its data in {recorded[1]}, not {location.data_path}: "
                f"set {DATA_PATH_ENV}={recorded[1]} (the same on every machine)"
            ) from None
        if snapshot is not None and "snapshot" in message.lower():
            raise UserError(
                f"no snapshot {snapshot} in the catalog (`mm15 catalog snapshots` lists them): {message}"
            ) from None
        if location.kind == "postgres":
            raise unreachable(location, e) from None
        raise
    return con, refused


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
