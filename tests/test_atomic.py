"""Atomic writes, and what a full disk looks like to the user (without needing a full disk: see
tests/flows/test_disk_full.py for the same on a real, small filesystem)."""

from __future__ import annotations

import errno

import pyarrow.parquet as pq
import pytest

from mm15.atomic import atomic_output, write_text_atomic
from mm15.catalog import staging
from mm15.catalog.staging import ShardSpec, stage_records
from mm15.errors import DiskFullError, UserError
from tests.lake import sample


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_file_appears_whole_or_not_at_all(tmp_path):
    path = tmp_path / "out.txt"
    write_text_atomic(path, "old")
    with pytest.raises(RuntimeError), atomic_output(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    write_text_atomic(path, "new")
    assert path.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_no_space_is_a_one_line_user_error_naming_the_path(tmp_path):
    path = tmp_path / "out.txt"
    with pytest.raises(DiskFullError) as err, atomic_output(path) as tmp:
        tmp.write_text("x" * 3 * 2**20)
        no_space()
    message = str(err.value)
    assert isinstance(err.value, UserError) and "\n" not in message
    assert message.startswith(f"no space left on the device writing {path} (")
    assert "MB free there; it needs more than 3.0 MB)" in message
    assert list(tmp_path.iterdir()) == []  # nothing half-written is visible


def test_staging_on_a_full_disk_leaves_no_shard(tmp_path, monkeypatch):
    monkeypatch.setattr(pq.ParquetWriter, "write_table", no_space)
    spec = ShardSpec(source="a", split="train", category="general", format="test")
    with pytest.raises(DiskFullError, match="no space left on the device writing"):
        stage_records(spec, [sample("a", "k1")], tmp_path)
    assert list(tmp_path.iterdir()) == [] and not staging.is_staged(tmp_path, spec)


def test_the_stage_task_hands_a_full_disk_back_instead_of_retrying(tmp_path, monkeypatch):
    import tasks.curate

    def full(*args, **kwargs):
        raise DiskFullError(tmp_path / "staging")

    monkeypatch.setattr(tasks.curate, "stage_shard", full)
    spec = {"source": "a", "split": "train", "category": "general", "format": "test"}
    result = tasks.curate.stage.fn(spec, str(tmp_path / "staging"))
    assert set(result) == {"error"} and result["error"].startswith("no space left on the device writing")
