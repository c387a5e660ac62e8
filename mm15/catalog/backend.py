"""Where the catalog lives, from the environment (`mm15.catalog.connection` reaches it).

DuckLake keeps the catalog's metadata (snapshots, data files, schemas) in a database of its own:

- by default a SQLite file next to the data, MM15_HOME/catalog/meta.sqlite: several processes of one
  machine read it while one commits (a DuckDB file, the format of older homes, admitted one process);
- with MM15_CATALOG_URL=postgres://USER@HOST:PORT/DB, a PostgreSQL database that processes on many
  machines share. The password comes from the URL or PGPASSWORD and is never shown.

MM15_DATA_PATH puts the Parquet files elsewhere than MM15_HOME/catalog/data: another folder, or
s3://BUCKET/PREFIX with the usual AWS_* credentials.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from mm15.errors import UserError

CATALOG_URL_ENV, DATA_PATH_ENV = "MM15_CATALOG_URL", "MM15_DATA_PATH"
SQLITE_FILE = "meta.sqlite"
LEGACY_FILE = "meta.ducklake"  # DuckDB-file metadata of older homes, migrated to SQLite on first use
DATA_DIR = "data"
# AWS variable -> DuckDB S3 secret option.
AWS_OPTIONS = {
    "AWS_ACCESS_KEY_ID": "KEY_ID",
    "AWS_SECRET_ACCESS_KEY": "SECRET",
    "AWS_SESSION_TOKEN": "SESSION_TOKEN",
    "AWS_REGION": "REGION",
}


def sql_string(value: object) -> str:
    """A SQL string literal, for the few statements (LOAD, ATTACH) that take no parameters."""
    return "'" + str(value).replace("'", "''") + "'"


@dataclass(frozen=True)
class Location:
    """Where one catalog's metadata and data files are."""

    kind: str  # "sqlite", "postgres", or "duckdb" (the legacy file, read only to migrate it)
    metadata: str  # the file, or libpq keywords "dbname=... host=... port=... user=..." (no password)
    data_path: str  # a folder or s3://BUCKET/PREFIX, ending with "/"
    shown: str  # how messages name the metadata (no password)
    password: str | None = field(default=None, repr=False)

    @property
    def in_s3(self) -> bool:
        return self.data_path.startswith("s3://")

    def attach_statement(self, *, read_only: bool, snapshot: int | None = None, alias: str = "lake") -> str:
        target = {"sqlite": "ducklake:sqlite:", "postgres": "ducklake:postgres:", "duckdb": "ducklake:"}
        options = [f"DATA_PATH {sql_string(self.data_path)}"]
        if self.kind != "postgres":
            # The catalog records the absolute data path it was created with; a file catalog's data is
            # wherever the home is now (copied or moved). A shared catalog checks every machine agrees.
            options.append("OVERRIDE_DATA_PATH true")
        if self.password is not None:
            options.append("META_SECRET mm15_catalog_database")
        if read_only:
            options.append("READ_ONLY")
            if snapshot is not None:
                options.append(f"SNAPSHOT_VERSION {int(snapshot)}")
        else:
            options.append("DATA_INLINING_ROW_LIMIT 0")  # every row in Parquet, none in the metadata
        return f"ATTACH {sql_string(target[self.kind] + self.metadata)} AS {alias} ({', '.join(options)})"


def locate(root: Path) -> Location:
    """The catalog the environment names; by default the one under `root` (MM15_HOME/catalog)."""
    data = data_path(root)
    url = os.environ.get(CATALOG_URL_ENV, "").strip()
    if not url:
        return Location("sqlite", str(root / SQLITE_FILE), data, str(root / SQLITE_FILE))
    keywords, password = parse_catalog_url(url)
    shown = f"postgres://{keywords['user']}@{keywords['host']}:{keywords['port']}/{keywords['dbname']}"
    return Location("postgres", conninfo(keywords), data, shown, password)


def legacy_location(root: Path) -> Location:
    """The DuckDB-file metadata of an older home (what the migration reads)."""
    return Location("duckdb", str(root / LEGACY_FILE), data_path(root), str(root / LEGACY_FILE))


def data_path(root: Path) -> str:
    value = os.environ.get(DATA_PATH_ENV, "").strip()
    if not value:
        return f"{root.resolve() / DATA_DIR}/"
    if value.startswith("s3://"):
        if not re.fullmatch(r"s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?", value):
            raise UserError(f"{DATA_PATH_ENV}: expected s3://BUCKET/PREFIX, got {value!r}")
        return value.rstrip("/") + "/"
    if "://" in value:
        raise UserError(f"{DATA_PATH_ENV}: expected a folder or s3://BUCKET/PREFIX, got {value!r}")
    return f"{Path(value).expanduser().resolve()}/"


def parse_catalog_url(url: str) -> tuple[dict[str, str], str | None]:
    """postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=...] -> (libpq keywords, password)."""
    expected = f"{CATALOG_URL_ENV}: expected postgres://USER@HOST:PORT/DB, got {masked(url)!r}"
    try:
        parts = urlsplit(url)
        port = parts.port or 5432
    except ValueError:
        raise UserError(expected) from None
    database = unquote(parts.path.lstrip("/"))
    if parts.scheme not in ("postgres", "postgresql") or not (parts.username and parts.hostname and database):
        raise UserError(expected)
    if "/" in database or parts.fragment:
        raise UserError(expected)
    keywords = {
        "dbname": database,
        "host": parts.hostname,
        "port": str(port),
        "user": unquote(parts.username),
    }
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if not re.fullmatch(r"[a-z_]+", key) or key in keywords or key == "password":
            raise UserError(f"{CATALOG_URL_ENV}: unexpected parameter {key!r} in {masked(url)!r}")
        keywords[key] = value
    return keywords, (unquote(parts.password) if parts.password is not None else None)


def masked(url: str) -> str:
    """`url` with its password, if any, replaced by ***."""
    return re.sub(r"(://[^/@:]*):[^/]*@", r"\1:***@", url)  # up to the host's @, even if it has @ in it


def conninfo(keywords: dict[str, str]) -> str:
    """A libpq connection string: key=value pairs, values quoted where needed."""
    quoted = {k: v if re.fullmatch(r"[\w.\-]+", v) else "'" + re.sub(r"(['\\])", r"\\\1", v) + "'"
              for k, v in keywords.items()}  # fmt: skip
    return " ".join(f"{k}={v}" for k, v in quoted.items())


def s3_secret_options(env: dict[str, str] | os._Environ = os.environ) -> dict[str, str]:
    """The options of the DuckDB S3 secret that the AWS_* variables describe (AWS_ENDPOINT_URL: an
    S3-compatible server such as MinIO, addressed by path)."""
    options = {option: env[name] for name, option in AWS_OPTIONS.items() if env.get(name)}
    if "REGION" not in options and env.get("AWS_DEFAULT_REGION"):
        options["REGION"] = env["AWS_DEFAULT_REGION"]
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UserError(f"AWS_ENDPOINT_URL: expected http(s)://HOST[:PORT], got {endpoint!r}")
        options |= {"ENDPOINT": parts.netloc, "USE_SSL": str(parts.scheme == "https").lower()}
        options["URL_STYLE"] = "path"
    return options
