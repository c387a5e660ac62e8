import pytest

from mm15.catalog import open_catalog
from mm15.errors import UserError
from tests.lake import sample


@pytest.fixture
def filled(lake):
    lake.commit([lake.stage("a", [sample("a", "k1"), sample("a", "k2", (2,))])])
    return lake


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
def test_read_only_connections_refuse_writes(filled, statement):
    with open_catalog(filled.root) as catalog, pytest.raises(UserError, match="read-only"):
        catalog.query(statement)
    assert filled.query("SELECT count(*) FROM samples") == [(2,)]


def test_reads_cannot_reach_files_outside_the_catalog(filled):
    with open_catalog(filled.root) as catalog, pytest.raises(UserError):
        catalog.query("SELECT * FROM read_csv('/etc/passwd')")


def test_one_statement_at_a_time(filled):
    with open_catalog(filled.root) as catalog, pytest.raises(UserError, match="exactly one"):
        catalog.query("SELECT 1; SELECT 2")


def test_parameterised_queries(filled):
    with open_catalog(filled.root) as catalog:
        assert catalog.query("SELECT key FROM samples WHERE key = ?", ["k2"])[1] == [("k2",)]


def test_paths_with_quotes_work(tmp_path):
    from tests.lake import Lake

    lake = Lake(tmp_path / "it's here")
    lake.commit([lake.stage("a", [sample("a", "k1")])])
    assert lake.query("SELECT key FROM samples") == [("k1",)]
