"""Orphaned data files (left by a commit killed after writing them) are removed by the next commit, once
they are old enough to belong to no commit still in flight."""

from __future__ import annotations

import os
import time

import pytest

from mm15.catalog import open_catalog
from mm15.catalog.maintenance import ORPHAN_MIN_AGE_S, remove_orphaned_files
from tests.lake import sample


def data_files(lake) -> set[str]:
    return {str(p.relative_to(lake.root)) for p in (lake.root / "data").rglob("*.parquet")}


def plant_orphan(lake, age_s: float = 2 * ORPHAN_MIN_AGE_S, name: str = "orphan") -> str:
    folder = next(p.parent for p in (lake.root / "data").rglob("*.parquet") if "samples" in str(p))
    orphan = folder / f"ducklake-0000-{name}.parquet"
    orphan.write_bytes(b"PAR1 half a file")
    os.utime(orphan, (time.time() - age_s,) * 2)
    return str(orphan.relative_to(lake.root))


def test_the_next_commit_removes_orphaned_files(lake):
    lake.commit([lake.stage("a", [sample("a", "k1")])])
    orphan = plant_orphan(lake)
    before = data_files(lake)
    lake.commit([lake.stage("b", [sample("b", "k1", (2,))])])
    after = data_files(lake)
    assert orphan in before and orphan not in after
    assert before - {orphan} <= after  # every referenced file stays
    assert lake.query("SELECT source FROM samples ORDER BY 1") == [("a",), ("b",)]


def test_young_unreferenced_files_are_kept_they_may_be_a_commit_in_flight(lake):
    lake.commit([lake.stage("a", [sample("a", "k1")])])
    in_flight = plant_orphan(lake, age_s=60, name="in-flight")
    orphan = plant_orphan(lake)
    with open_catalog(lake.root, read_only=False) as catalog:
        removed = remove_orphaned_files(catalog)
    assert [r.removeprefix(str(lake.root) + "/") for r in removed] == [orphan]
    assert in_flight in data_files(lake)


def test_remove_orphaned_files_reports_what_it_removed_and_needs_a_writer(lake):
    lake.commit([lake.stage("a", [sample("a", "k1")])])
    orphan = plant_orphan(lake)
    with open_catalog(lake.root, read_only=False) as catalog:
        removed = remove_orphaned_files(catalog)
        assert remove_orphaned_files(catalog) == []
    assert [r.removeprefix(str(lake.root) + "/") for r in removed] == [orphan]
    with open_catalog(lake.root) as catalog, pytest.raises(ValueError, match="writable"):
        remove_orphaned_files(catalog)
    assert lake.query("SELECT count(*) FROM samples") == [(1,)]


@pytest.mark.slow  # several commits: over a second
def test_vacuum_command_removes_orphans_and_keeps_the_catalog(lake):
    from typer.testing import CliRunner

    from mm15.cli import app

    lake.commit([lake.stage("a", [sample("a", "k1")])])
    orphan = plant_orphan(lake)
    snapshot = lake.snapshot()
    env = {"MM15_HOME": str(lake.root.parent)}
    result = CliRunner().invoke(app, ["catalog", "vacuum"], env=env)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [f"removed {lake.root / orphan}", "1 orphaned file(s) removed."]
    assert lake.snapshot() == snapshot and lake.query("SELECT count(*) FROM samples") == [(1,)]
    assert CliRunner().invoke(app, ["catalog", "vacuum"], env=env).output == "0 orphaned file(s) removed.\n"


@pytest.mark.slow
def test_vacuum_min_age_takes_younger_orphans_too(lake):
    from typer.testing import CliRunner

    from mm15.cli import app

    lake.commit([lake.stage("a", [sample("a", "k1")])])
    young = plant_orphan(lake, age_s=600, name="young")
    env = {"MM15_HOME": str(lake.root.parent)}
    assert CliRunner().invoke(app, ["catalog", "vacuum"], env=env).output == "0 orphaned file(s) removed.\n"
    result = CliRunner().invoke(app, ["catalog", "vacuum", "--min-age", "0.1"], env=env)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [f"removed {lake.root / young}", "1 orphaned file(s) removed."]
    assert young not in data_files(lake) and lake.query("SELECT count(*) FROM samples") == [(1,)]
