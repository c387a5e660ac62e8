"""Overlapping processes take turns on the catalog: an open that finds the metadata file held by another
process waits (up to MM15_CATALOG_WAIT seconds) instead of failing."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from mm15.catalog import open_catalog
from mm15.errors import UserError
from tests.lake import sample

HOLD = """
import sys, time
from pathlib import Path
from mm15.catalog import open_catalog
with open_catalog(Path(sys.argv[1]), read_only=False):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _hold_writer(root, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(root), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_reader_waits_for_a_writer_in_another_process(lake, monkeypatch):
    lake.commit([lake.stage("a", [sample("a", "k1")])])
    holder = _hold_writer(lake.root, 2.0)
    try:
        started = time.monotonic()
        with open_catalog(lake.root) as catalog:
            assert catalog.query("SELECT count(*) FROM samples")[1] == [(1,)]
        assert time.monotonic() - started > 0.5  # it waited for the writer
    finally:
        holder.wait(timeout=30)


def test_the_wait_is_bounded_and_the_error_is_one_line(lake, monkeypatch):
    lake.commit([lake.stage("a", [sample("a", "k1")])])
    monkeypatch.setenv("MM15_CATALOG_WAIT", "0.5")
    holder = _hold_writer(lake.root, 5.0)
    try:
        with (
            pytest.raises(UserError, match=r"in use by another process .*waited 0.5 s"),
            open_catalog(lake.root),
        ):
            pass
    finally:
        holder.kill()
        holder.wait(timeout=30)
