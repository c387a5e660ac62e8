"""A home whose catalog metadata is a DuckDB file (meta.ducklake, older versions) is migrated to SQLite on
first use: every snapshot kept, the old file kept beside it as meta.ducklake.migrated."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from mm15.catalog import catalog_exists, open_catalog
from mm15.catalog.backend import legacy_location
from tests.lake import Lake, sample

QUERIES = [  # at snapshot {v}
    "SELECT source, key, split FROM samples AT (VERSION => {v}) ORDER BY ALL",
    "SELECT source, key, reason FROM rejects AT (VERSION => {v}) ORDER BY ALL",
    "SELECT shard FROM shards AT (VERSION => {v}) ORDER BY ALL",
    "SELECT count(*) FROM images AT (VERSION => {v})",
]


def _history(lake: Lake) -> dict:
    """Everything a reader can see: the snapshot list, and every table at every snapshot."""
    with open_catalog(lake.root, location=lake.location) as catalog:
        snapshots = catalog.snapshots()
        versions = [s["snapshot"] for s in snapshots]
        tables = {v: [catalog.query(q.format(v=v))[1] for q in QUERIES] for v in versions}
    return {"snapshots": snapshots, "tables": tables}


def _metadata_files(lake: Lake) -> list[str]:
    """The metadata files, without SQLite's write-ahead log and shared memory."""
    return sorted(p.name for p in lake.root.glob("meta.*") if not p.name.endswith(("-wal", "-shm")))


@pytest.fixture(scope="module")
def legacy_home(tmp_path_factory):
    """A home as older versions left it: DuckDB-file metadata, three commits (one evicts a row)."""
    home = tmp_path_factory.mktemp("legacy-home")
    lake = Lake(home, location=legacy_location(home / "catalog"))
    lake.commit([lake.stage("a", [sample("a", "k1"), sample("a", "k2", (2,))])], message="first")
    lake.commit([lake.stage("b", [sample("b", "k3", (3,)), sample("b", "k4", (1,))])], message="second")
    lake.commit(
        [lake.stage("e", [sample("e", "k5", (2,), split="eval")], split="eval")], message="evicts a:k2"
    )
    return home, _history(lake)


@pytest.fixture
def legacy(legacy_home, tmp_path):
    """A copy of the legacy home for one test, and what it held."""
    home, history = legacy_home
    shutil.copytree(home, tmp_path / "home")
    return Lake(tmp_path / "home"), history


@pytest.mark.slow  # a migration and a commit: several seconds
def test_the_old_metadata_is_migrated_with_every_snapshot(legacy):
    lake, before = legacy
    assert len(before["snapshots"]) >= 3 and not (lake.root / "meta.sqlite").exists()
    assert catalog_exists(lake.root)
    assert _history(lake) == before  # the first open migrates
    assert (lake.root / "meta.sqlite").exists() and not (lake.root / "meta.ducklake").exists()
    assert (lake.root / "meta.ducklake.migrated").exists()  # the backup
    assert [s["message"] for s in before["snapshots"]][-3:] == ["first", "second", "evicts a:k2"]
    # time travel: the row evicted by the last commit is there in the one before
    old = before["snapshots"][-2]["snapshot"]
    assert ("a", "k2", "train") in lake.query(QUERIES[0].format(v=old))
    assert ("a", "k2", "train") not in lake.query(QUERIES[0].format(v=old + 1))
    # and the migrated catalog takes new commits
    result = lake.commit([lake.stage("c", [sample("c", "k6", (6,))])], message="after")
    assert result.snapshot == before["snapshots"][-1]["snapshot"] + 1
    assert lake.query("SELECT count(*) FROM samples") == [(4,)]


MIGRATE = """
import sys
from pathlib import Path
from mm15.catalog import open_catalog
with open_catalog(Path(sys.argv[1])) as catalog:
    print(catalog.query("SELECT count(*) FROM samples")[1][0][0], len(catalog.snapshots()))
"""


@pytest.mark.slow  # three processes, each loading DuckDB: several seconds
def test_processes_opening_an_old_home_at_once_migrate_it_once(legacy):
    lake, before = legacy
    processes = [
        subprocess.Popen([sys.executable, "-c", MIGRATE, str(lake.root)], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=120)[0].split() for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0]
    assert outputs == [["3", str(len(before["snapshots"]))]] * 3
    assert _metadata_files(lake) == ["meta.ducklake.migrated", "meta.sqlite"]
    assert _history(lake) == before


def test_a_migration_that_stopped_halfway_is_done_again(legacy):
    lake, before = legacy
    (lake.root / "meta.sqlite.building").write_bytes(b"half a file")  # a migration killed while copying
    assert _history(lake) == before
    assert _metadata_files(lake) == ["meta.ducklake.migrated", "meta.sqlite"]


def test_a_migration_that_stopped_before_renaming_the_old_file_finishes(legacy):
    lake, before = legacy
    assert _history(lake) == before
    (lake.root / "meta.ducklake.migrated").rename(lake.root / "meta.ducklake")  # as if killed between renames
    assert _history(lake) == before
    assert _metadata_files(lake) == ["meta.ducklake.migrated", "meta.sqlite"]
