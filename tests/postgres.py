"""A real PostgreSQL server for the tests: started once per session on 127.0.0.1, as an unprivileged user
(PostgreSQL refuses to run as root), in a temporary folder; each test gets a database of its own."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

SUPERUSER = "mm15"
# A role that must give its password (scram), to test passwords; every other role is trusted.
PASSWORD_ROLE, PASSWORD = "secretive", "pa:ss w@rd/'x"
UNPRIVILEGED = "nobody"


def postgres_binary(name: str) -> str | None:
    """`name` (initdb, pg_ctl, psql) on the PATH, else in a Debian/Ubuntu PostgreSQL folder."""
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


@dataclass
class PostgresServer:
    folder: Path
    port: int
    host: str = "127.0.0.1"

    def psql(self, sql: str, database: str = "postgres") -> None:
        """Run `sql` as the superuser, outside a transaction (CREATE DATABASE needs that)."""
        command = [postgres_binary("psql"), "-h", self.host, "-p", str(self.port), "-U", SUPERUSER]
        subprocess.run(
            [*command, "-d", database, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def new_database(self, owner: str = SUPERUSER) -> str:
        name = f"lake_{uuid.uuid4().hex[:12]}"
        self.psql(f'CREATE DATABASE {name} OWNER "{owner}"')
        return name

    def url(self, database: str, user: str = SUPERUSER, password: str | None = None) -> str:
        from urllib.parse import quote

        secret = f":{quote(password, safe='')}" if password is not None else ""
        return f"postgres://{user}{secret}@{self.host}:{self.port}/{database}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_unprivileged(command: list[str]) -> list[str]:
    return ["runuser", "-u", UNPRIVILEGED, "--", *command] if os.geteuid() == 0 else command


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server for the session; skipped only where PostgreSQL is not installed."""
    binaries = {name: postgres_binary(name) for name in ("initdb", "pg_ctl", "psql")}
    missing = [name for name, path in binaries.items() if path is None]
    if missing:
        pytest.skip(f"PostgreSQL is not installed here (no {', '.join(missing)} on the PATH)")
    # Not under pytest's temporary folder: its parents are private to root, and the server runs as nobody.
    folder = Path(tempfile.mkdtemp(prefix="mm15-postgres-"))
    if os.geteuid() == 0:
        shutil.chown(folder, UNPRIVILEGED)
    data = folder / "data"
    initdb = [binaries["initdb"], "-D", str(data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-sync"]
    subprocess.run(_as_unprivileged(initdb), check=True, capture_output=True, timeout=120)
    hba = data / "pg_hba.conf"
    hba.write_text(f"host all {PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
    server = None
    for _ in range(3):  # the free port may be taken between choosing and binding it
        port = _free_port()
        options = f"-k {folder} -p {port} -h 127.0.0.1 -F -c fsync=off -c max_connections=200"
        start = [binaries["pg_ctl"], "-D", str(data), "-l", str(folder / "log"), "-w", "-t", "60"]
        if (
            subprocess.run(_as_unprivileged([*start, "-o", options, "start"]), capture_output=True).returncode
            == 0
        ):
            server = PostgresServer(folder, port)
            break
    if server is None:
        raise RuntimeError(f"PostgreSQL did not start: {(folder / 'log').read_text()[-2000:]}")
    try:
        escaped = PASSWORD.replace("'", "''")
        server.psql(f"CREATE ROLE {PASSWORD_ROLE} LOGIN PASSWORD '{escaped}'")
        yield server
    finally:
        stop = [binaries["pg_ctl"], "-D", str(data), "-m", "immediate", "-w", "stop"]
        subprocess.run(_as_unprivileged(stop), capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_catalog(postgres_server, tmp_path, monkeypatch) -> str:
    """MM15_CATALOG_URL of a new, empty database, and MM15_DATA_PATH a folder of its own (not in the home)."""
    url = postgres_server.url(postgres_server.new_database())
    monkeypatch.setenv("MM15_CATALOG_URL", url)
    monkeypatch.setenv("MM15_DATA_PATH", str(tmp_path / "shared-data"))
    return url
