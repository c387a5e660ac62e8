import os
import shutil
from pathlib import Path

import pytest

from mm15.catalog import open_catalog
from mm15.errors import UserError
from tests.lake import Lake, sample


@pytest.fixture
def filled(lake):
    lake.commit([lake.stage("a", [sample("a", "k1"), sample("a", "k2", (2,))])])
    return lake


@pytest.fixture
def readable(shared_lake):
    """A catalog the test only reads: two samples (k1, k2), shared by the session."""
    return shared_lake


def test_missing_catalog_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="mm15 curate"), open_catalog(tmp_path / "nowhere"):
        pass


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM samples",
        "INSERT INTO rejects VALUES ('a', 'b', 'c', 'd', NULL, NULL)",
        "DROP TABLE samples",
        "UPDATE samples SET split = 'eval'",
        "COPY samples TO 'out.csv'",
        "ATTACH 'other.db'",
        "CREATE TABLE x AS SELECT 1",
    ],
)
def test_read_only_connections_refuse_writes(readable, statement):
    with open_catalog(readable.root) as catalog, pytest.raises(UserError, match="read-only"):
        catalog.query(statement)
    assert readable.query("SELECT count(*) FROM samples") == [(2,)]


def test_reads_cannot_reach_files_outside_the_catalog(readable):
    with open_catalog(readable.root) as catalog, pytest.raises(UserError):
        catalog.query("SELECT * FROM read_csv('/etc/passwd')")


def test_one_statement_at_a_time(readable):
    with open_catalog(readable.root) as catalog, pytest.raises(UserError, match="exactly one"):
        catalog.query("SELECT 1; SELECT 2")


def test_parameterised_queries(readable):
    with open_catalog(readable.root) as catalog:
        assert catalog.query("SELECT key FROM samples WHERE key = ?", ["k2"])[1] == [("k2",)]


def test_paths_with_quotes_work(tmp_path):
    lake = Lake(tmp_path / "it's here")
    lake.commit([lake.stage("a", [sample("a", "k1")])])
    assert lake.query("SELECT key FROM samples") == [("k1",)]


def test_query_page_keeps_the_first_rows_and_counts_the_rest(readable):
    sql = "SELECT range AS i FROM range(100)"
    with open_catalog(readable.root) as catalog:
        page = catalog.query_page(sql, limit=10)
        assert page.columns == ["i"] and page.rows == [(i,) for i in range(10)]
        assert (page.more, page.more_exact) == (90, True)
        page = catalog.query_page(sql, limit=10, count_up_to=50)  # counting stops: "more than 50"
        assert (len(page.rows), page.more, page.more_exact) == (10, 50, False)
        assert catalog.query_page(sql, limit=0).more == 100
        everything = catalog.query_page(sql)
        assert (everything.rows, everything.more) == ([(i,) for i in range(100)], 0)
        assert catalog.query_page(sql, limit=100) == everything
        explain = catalog.query_page("EXPLAIN " + sql, limit=1)
        assert len(explain.rows) == 1


def test_a_query_over_the_memory_limit_is_a_user_error(readable):
    with (
        open_catalog(readable.root, memory_limit="16MB", temp_limit="0B") as catalog,
        pytest.raises(UserError, match="^SQL: Out of Memory Error") as raised,
    ):
        catalog.query_page("SELECT length(list(range)) FROM range(10000000)", limit=10)
    assert "\n" not in str(raised.value)


def test_reads_cannot_reach_duckdbs_temporary_folder(readable, tmp_path, monkeypatch):
    # By default DuckDB spills to ./.tmp and may read it, whatever allowed_directories says.
    cwd = tmp_path / "cwd"
    (cwd / ".tmp").mkdir(parents=True)
    (cwd / ".tmp" / "s.csv").write_text("a,b\n1,2\n")
    monkeypatch.chdir(cwd)
    with open_catalog(readable.root) as catalog:
        for path in (".tmp/s.csv", str(cwd / ".tmp" / "s.csv")):
            with pytest.raises(UserError, match="Permission Error") as raised:
                catalog.query(f"SELECT * FROM read_csv('{path}')")
            assert "\n" not in str(raised.value)
        ((temp,),) = catalog.query("SELECT current_setting('temp_directory')")[1]
    assert Path(temp).parent == readable.root.parent.resolve() / "tmp"


def _files(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


@pytest.mark.slow  # several commits: over a second
def test_a_copied_or_moved_home_can_be_read_and_written(filled, tmp_path_factory):
    # The catalog records the absolute path of its data folder: without OVERRIDE_DATA_PATH, DuckLake
    # refuses to open a copy ("DATA_PATH parameter ... does not match existing data path").
    home, elsewhere = filled.root.parent, tmp_path_factory.mktemp("elsewhere")
    copied, moved = elsewhere / "copied", elsewhere / "moved"
    shutil.copytree(home, copied, symlinks=True)
    shutil.copytree(home, elsewhere / "to-move", symlinks=True)
    os.rename(elsewhere / "to-move", moved)
    filled.commit([filled.stage("c", [sample("c", "k4", (4,))])])  # files the copies do not know
    before = _files(home)
    for other in (copied, moved):
        lake = Lake(other)
        assert lake.query("SELECT count(*) FROM samples") == [(2,)]
        lake.commit([lake.stage("b", [sample("b", "k3", (3,))])])
        assert lake.query("SELECT source, key FROM samples ORDER BY 1, 2") == [
            ("a", "k1"),
            ("a", "k2"),
            ("b", "k3"),
        ]
        assert lake.query("SELECT count(*) FROM samples", snapshot=2) == [(2,)]  # before the commit
    assert _files(home) == before
    assert filled.query("SELECT source, key FROM samples ORDER BY 1, 2") == [
        ("a", "k1"),
        ("a", "k2"),
        ("c", "k4"),
    ]
