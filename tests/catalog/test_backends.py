"""Where the catalog lives: SQLite metadata in the home by default, PostgreSQL with MM15_CATALOG_URL, the
data files in MM15_DATA_PATH (a folder, or S3); read-only connections stay sealed on every backend."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mm15.catalog import catalog_exists, open_catalog
from mm15.catalog.backend import data_path, locate, masked, s3_secret_options
from mm15.errors import UserError
from tests.lake import Lake, sample
from tests.postgres import PASSWORD, PASSWORD_ROLE

# --- configuration: parsed without any server --------------------------------------------------------


def test_the_default_is_a_sqlite_file_and_a_data_folder_in_the_home(tmp_path, monkeypatch):
    monkeypatch.delenv("MM15_CATALOG_URL", raising=False)
    monkeypatch.delenv("MM15_DATA_PATH", raising=False)
    location = locate(tmp_path / "catalog")
    assert (location.kind, location.metadata) == ("sqlite", str(tmp_path / "catalog" / "meta.sqlite"))
    assert location.data_path == f"{tmp_path.resolve()}/catalog/data/"


@pytest.mark.parametrize(
    ("url", "keywords", "password"),
    [
        ("postgres://ann@db.example:6543/lake", "dbname=lake host=db.example port=6543 user=ann", None),
        ("postgresql://ann@db/lake", "dbname=lake host=db port=5432 user=ann", None),
        ("postgres://ann:s%40cret@db:5/lake?sslmode=require", "dbname=lake host=db port=5 user=ann sslmode=require", "s@cret"),
        ("postgres://my%20user@db:5/my%20lake", "dbname='my lake' host=db port=5 user='my user'", None),
    ],
)  # fmt: skip
def test_catalog_urls_become_libpq_keywords_without_the_password(url, keywords, password, monkeypatch):
    monkeypatch.setenv("MM15_CATALOG_URL", url)
    location = locate(Path("/nowhere/catalog"))
    assert (location.kind, location.metadata, location.password) == ("postgres", keywords, password)
    assert "cret" not in location.shown and "cret" not in repr(location)
    assert location.attach_statement(read_only=True).count("cret") == 0


@pytest.mark.parametrize(
    "url",
    [
        "mysql://ann@db:1/lake",
        "postgres://db:1/lake",  # no user
        "postgres://ann@db:1/",  # no database
        "postgres://ann:hunter2@db:port/lake",  # a port that is not a number
        "postgres://ann:hunter2@db:1/lake?password=x",
        "lake.sqlite",
    ],
)
def test_bad_catalog_urls_are_one_line_errors_that_hide_the_password(url, monkeypatch):
    monkeypatch.setenv("MM15_CATALOG_URL", url)
    with pytest.raises(UserError, match=r"^MM15_CATALOG_URL: ") as raised:
        locate(Path("/nowhere/catalog"))
    assert "\n" not in str(raised.value) and "hunter2" not in str(raised.value)
    assert masked("postgres://ann:hunter2@db:1/lake") == "postgres://ann:***@db:1/lake"


def test_data_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("MM15_DATA_PATH", "s3://my-bucket/some/prefix")
    assert data_path(tmp_path) == "s3://my-bucket/some/prefix/"
    monkeypatch.setenv("MM15_DATA_PATH", str(tmp_path / "elsewhere"))
    assert data_path(tmp_path) == f"{tmp_path.resolve()}/elsewhere/"
    for bad in ("gs://bucket/x", "s3://", "s3://A_B/x"):
        monkeypatch.setenv("MM15_DATA_PATH", bad)
        with pytest.raises(UserError, match="^MM15_DATA_PATH: expected"):
            data_path(tmp_path)


def test_s3_credentials_come_from_the_usual_aws_variables():
    env = {
        "AWS_ACCESS_KEY_ID": "AKIA",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_SESSION_TOKEN": "token",
        "AWS_DEFAULT_REGION": "eu-west-3",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
    }
    assert s3_secret_options(env) == {
        "KEY_ID": "AKIA",
        "SECRET": "secret",
        "SESSION_TOKEN": "token",
        "REGION": "eu-west-3",
        "ENDPOINT": "127.0.0.1:9000",
        "USE_SSL": "false",
        "URL_STYLE": "path",
    }
    assert s3_secret_options({"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "x"}) == {
        "REGION": "us-east-1"
    }
    assert s3_secret_options({}) == {}  # no endpoint: AWS itself, virtual-host addressing
    with pytest.raises(UserError, match="AWS_ENDPOINT_URL"):
        s3_secret_options({"AWS_ENDPOINT_URL": "ftp://x"})


# --- read-only connections stay sealed: the metadata extensions open databases by themselves ---------


@pytest.mark.parametrize(
    "template",
    [
        "SELECT * FROM sqlite_scan('{meta}', 'ducklake_snapshot')",
        "SELECT * FROM sqlite_attach('{meta}')",
        "SELECT * FROM sqlite_query('__ducklake_metadata_lake', 'DELETE FROM ducklake_snapshot')",
        "SELECT * FROM \"SQLITE_SCAN\"('{meta}', 'x')",
        "EXPLAIN ANALYZE SELECT * FROM system.main.sqlite_scan('{meta}', 'x')",
        "WITH t AS (SELECT 1) SELECT * FROM t WHERE 1 IN (SELECT 1 FROM sqlite_scan('{meta}', 'x'))",
        "SELECT * FROM query('SELECT * FROM sqli' || 'te_scan(''{meta}'', ''x'')')",
        "SELECT * FROM ducklake_merge_adjacent_files('lake')",
        "SELECT * FROM lake.cleanup_old_files(cleanup_all => true)",
    ],
)
def test_read_only_connections_refuse_the_functions_that_open_other_databases(shared_lake, template):
    with (
        open_catalog(shared_lake.root) as catalog,
        pytest.raises(UserError, match="read-only here") as raised,
    ):
        catalog.query(template.format(meta=shared_lake.root / "meta.sqlite"))
    assert "\n" not in str(raised.value)


@pytest.mark.slow  # runs the command line in subprocesses
def test_sql_command_stays_read_only_and_inside_the_catalog(shared_lake):
    def mm15_sql(statement: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "mm15.cli", "catalog", "sql", statement]
        return subprocess.run(command, env=shared_lake.env(), capture_output=True, text=True, timeout=120)

    assert "2" in mm15_sql("SELECT count(*) FROM samples").stdout
    for statement in (
        "DELETE FROM samples",
        "SELECT * FROM read_csv('/etc/passwd')",
        f"SELECT * FROM sqlite_scan('{shared_lake.root / 'meta.sqlite'}', 'ducklake_snapshot')",
    ):
        result = mm15_sql(statement)
        assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1, result.stderr


# --- PostgreSQL ------------------------------------------------------------------------------------

COMMITS = [
    ("a", [("k1", (1,)), ("k2", (2,)), ("k3", (1,))]),  # k3: a duplicate of k1
    ("b", [("k1", (3,)), ("k2", (2,))]),  # k2: a duplicate of a:k2
    ("e", [("k1", (3,))]),  # an eval copy of b:k1, which it evicts
]
REPORT = [
    "SELECT source, key, split FROM samples ORDER BY ALL",
    "SELECT source, key, reason FROM rejects ORDER BY ALL",
    "SELECT source, split, read, kept, quarantined, duplicates, contaminated, evicted FROM ingests ORDER BY ALL",
    "SELECT count(*) FROM images",
]


def _curate(lake: Lake) -> list[list[tuple]]:
    """Commit COMMITS one snapshot each; what the catalog holds then, and at the snapshot before the last."""
    for source, rows in COMMITS:
        split = "eval" if source == "e" else "train"
        lake.commit(
            [lake.stage(source, [sample(source, k, seeds, split=split) for k, seeds in rows], split=split)]
        )
    last = lake.snapshot()
    return [lake.query(q) for q in REPORT] + [lake.query(REPORT[0], snapshot=last - 1)]


@pytest.mark.slow  # six commits: over ten seconds
def test_a_postgres_catalog_with_its_own_data_folder_holds_what_the_default_one_holds(
    postgres_catalog, tmp_path_factory, monkeypatch
):
    shared = Lake(tmp_path_factory.mktemp("machine-1"))
    assert not catalog_exists(shared.root)
    in_postgres = _curate(shared)
    assert catalog_exists(shared.root) and not (shared.root / "meta.sqlite").exists()
    assert not (shared.root / "data").exists() and any(Path(data_path(shared.root)).rglob("*.parquet"))
    assert len(in_postgres[0]) == 3 and len(in_postgres[1]) == 3  # k1, k2 kept; b:k1 evicted by e:k1
    # Another home (another machine) with the same environment sees the same catalog.
    assert Lake(tmp_path_factory.mktemp("machine-2")).query(REPORT[0]) == in_postgres[0]

    monkeypatch.delenv("MM15_CATALOG_URL")
    monkeypatch.delenv("MM15_DATA_PATH")
    assert _curate(Lake(tmp_path_factory.mktemp("default"))) == in_postgres


def test_an_empty_or_unreachable_postgres_catalog_is_a_clear_error(
    postgres_catalog, postgres_server, tmp_path, monkeypatch
):
    with (
        pytest.raises(UserError, match="no catalog at postgres://mm15@.*mm15 curate"),
        open_catalog(tmp_path),
    ):
        pass
    monkeypatch.setenv(
        "MM15_CATALOG_URL", f"postgres://mm15:hunter2@127.0.0.1:1/{postgres_catalog.rsplit('/')[-1]}"
    )
    for attempt in (lambda: catalog_exists(tmp_path), lambda: open_catalog(tmp_path).__enter__()):
        with pytest.raises(
            UserError, match=r"^cannot reach the catalog database postgres://mm15@127.0.0.1:1/"
        ) as raised:
            attempt()
        assert "\n" not in str(raised.value) and "hunter2" not in str(raised.value)


def test_passwords_from_the_url_or_pgpassword_and_never_shown(postgres_server, tmp_path, monkeypatch):
    database = postgres_server.new_database(owner=PASSWORD_ROLE)
    monkeypatch.setenv("MM15_DATA_PATH", str(tmp_path / "data"))
    monkeypatch.setenv("MM15_CATALOG_URL", postgres_server.url(database, PASSWORD_ROLE, PASSWORD))
    with open_catalog(tmp_path, read_only=False) as catalog:
        assert catalog.query("SELECT count(*) FROM samples")[1] == [(0,)]
        assert PASSWORD not in str(catalog.query("SELECT * FROM duckdb_databases()")[1])
        assert PASSWORD not in str(catalog.query("SELECT * FROM duckdb_secrets()")[1])
    monkeypatch.setenv("MM15_CATALOG_URL", postgres_server.url(database, PASSWORD_ROLE))
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    with open_catalog(tmp_path) as catalog:
        assert catalog.query("SELECT count(*) FROM samples")[1] == [(0,)]
    monkeypatch.setenv("PGPASSWORD", "wrong-password")
    with pytest.raises(UserError, match="password authentication failed") as raised, open_catalog(tmp_path):
        pass
    assert "wrong-password" not in str(raised.value)


HOLD_UNCOMMITTED = """
import sys, time
from pathlib import Path
from mm15.catalog import open_catalog
from tests.lake import Lake
lake = Lake(Path(sys.argv[1]))
with open_catalog(lake.root, read_only=False) as catalog:
    catalog.con.execute("BEGIN TRANSACTION")
    catalog.con.execute("INSERT INTO samples SELECT * REPLACE ('late' AS source) FROM samples")
    print("in flight", flush=True)
    sys.stdin.readline()
    catalog.con.execute("COMMIT")
"""


@pytest.mark.slow  # two commits and a writer process
def test_a_postgres_reader_sees_the_last_commit_while_another_process_commits(postgres_catalog, tmp_path):
    lake = Lake(tmp_path)
    lake.commit([lake.stage("a", [sample("a", "k1"), sample("a", "k2", (2,))])])
    writer = subprocess.Popen(
        [sys.executable, "-c", HOLD_UNCOMMITTED, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "in flight"
        assert lake.query("SELECT count(*) FROM samples") == [(2,)]
        writer.stdin.write("commit\n")
        writer.stdin.flush()
        assert writer.wait(timeout=60) == 0
        assert lake.query("SELECT count(*) FROM samples") == [(4,)]
    finally:
        writer.kill()


def test_read_only_postgres_connections_are_sealed(postgres_catalog, postgres_server, tmp_path):
    lake = Lake(tmp_path)
    lake.commit([lake.stage("a", [sample("a", "k1")])])
    other = f"host=127.0.0.1 port={postgres_server.port} user=mm15 dbname=postgres"
    with open_catalog(lake.root) as catalog:
        for statement in (
            "DELETE FROM samples",
            f"SELECT * FROM postgres_scan('{other}', 'pg_catalog', 'pg_database')",
            "SELECT * FROM postgres_query('__ducklake_metadata_lake', 'SELECT 1')",
            "SELECT * FROM read_csv('/etc/passwd')",
        ):
            with pytest.raises(UserError):
                catalog.query(statement)
        assert catalog.query("SELECT key FROM samples")[1] == [("k1",)]


# --- S3 (a local moto server) ------------------------------------------------------------------------


@pytest.fixture
def s3_data_path(tmp_path, monkeypatch):
    """MM15_DATA_PATH in a bucket of a moto S3 server on 127.0.0.1 (skipped where moto is not installed)."""
    pytest.importorskip("moto.server", reason="moto[server] is not installed (a dev dependency)")
    import socket
    import time

    import boto3

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        credentials = {"AWS_ACCESS_KEY_ID": "test-key", "AWS_SECRET_ACCESS_KEY": "test-secret"}
        credentials |= {"AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
        for name, value in credentials.items():
            monkeypatch.setenv(name, value)
        s3 = boto3.client("s3", endpoint_url=credentials["AWS_ENDPOINT_URL"])
        deadline = time.monotonic() + 60
        while True:
            try:
                s3.create_bucket(Bucket="lake-bucket")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        s3.put_object(Bucket="lake-bucket", Key="private/notes.csv", Body=b"a,b\n1,2\n")
        monkeypatch.setenv("MM15_DATA_PATH", "s3://lake-bucket/catalog")
        yield s3
    finally:
        server.kill()
        server.wait(timeout=30)


@pytest.mark.slow  # a moto server and two commits: several seconds
def test_data_files_in_s3(s3_data_path, tmp_path):
    lake = Lake(tmp_path)
    lake.commit([lake.stage("a", [sample("a", "k1"), sample("a", "k2", (2,))])])
    lake.commit([lake.stage("b", [sample("b", "k1", (2,))])])  # a duplicate of a:k2
    keys = [o["Key"] for o in s3_data_path.list_objects_v2(Bucket="lake-bucket")["Contents"]]
    assert any(k.startswith("catalog/main/samples/") and k.endswith(".parquet") for k in keys)
    assert not (lake.root / "data").exists()
    assert lake.query("SELECT source, key FROM samples ORDER BY ALL") == [("a", "k1"), ("a", "k2")]
    assert lake.query("SELECT count(*) FROM samples", snapshot=lake.snapshot() - 1) == [(2,)]
    with open_catalog(lake.root) as catalog:
        for outside in ("s3://lake-bucket/private/notes.csv", "/etc/passwd"):
            with pytest.raises(UserError, match="Permission Error"):
                catalog.query(f"SELECT * FROM read_csv('{outside}')")
