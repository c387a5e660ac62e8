"""Overlapping processes share the catalog. With SQLite metadata (the default) a reader opens at once while
another process holds the catalog open for writing; with a DuckDB metadata file (older homes, kept for
the migration) one process held it at a time, and an open waited (up to MM15_CATALOG_WAIT seconds)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from mm15.catalog import open_catalog
from mm15.catalog.backend import legacy_location
from mm15.errors import UserError
from tests.lake import sample

HOLD = """
import sys, time
from pathlib import Path
from mm15.catalog import open_catalog
from mm15.catalog.backend import legacy_location
root = Path(sys.argv[1])
location = legacy_location(root) if sys.argv[3] == "legacy" else None
with open_catalog(root, read_only=False, location=location) as catalog:
    catalog.con.execute("BEGIN TRANSACTION")
    catalog.con.execute("DELETE FROM samples")  # an uncommitted write, held open
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _hold_writer(root, seconds: float, kind: str = "default") -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(root), str(seconds), kind], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_reader_does_not_wait_for_a_writer_in_another_process(lake):
    lake.commit([lake.stage("a", [sample("a", "k1")])])
    holder = _hold_writer(lake.root, 10.0)
    try:
        with open_catalog(lake.root) as catalog:
            assert catalog.query("SELECT count(*) FROM samples")[1] == [(1,)]  # the last committed
        assert holder.poll() is None  # the writer still holds the catalog
    finally:
        holder.kill()
        holder.wait(timeout=30)


@pytest.fixture
def legacy_lake(lake):
    """A catalog with DuckDB-file metadata, opened as such (no migration)."""
    with open_catalog(lake.root, read_only=False, location=legacy_location(lake.root)):
        pass
    return lake


def test_a_reader_waits_for_a_writer_holding_a_duckdb_file(legacy_lake):
    holder = _hold_writer(legacy_lake.root, 2.0, "legacy")
    try:
        started = time.monotonic()
        with open_catalog(legacy_lake.root, location=legacy_location(legacy_lake.root)) as catalog:
            assert catalog.query("SELECT count(*) FROM samples")[1] == [(0,)]
        assert time.monotonic() - started > 0.5  # it waited for the writer
    finally:
        holder.wait(timeout=30)


def test_the_wait_is_bounded_and_the_error_is_one_line(legacy_lake, monkeypatch):
    monkeypatch.setenv("MM15_CATALOG_WAIT", "0.5")
    holder = _hold_writer(legacy_lake.root, 5.0, "legacy")
    try:
        with (
            pytest.raises(UserError, match=r"in use by another process .*waited 0.5 s") as raised,
            open_catalog(legacy_lake.root, location=legacy_location(legacy_lake.root)),
        ):
            pass
        assert "\n" not in str(raised.value)
    finally:
        holder.kill()
        holder.wait(timeout=30)
