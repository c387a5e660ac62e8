"""A full disk during curation: one line naming the path, nothing half-written, the catalog as it was."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from mm15.catalog import catalog_exists
from mm15.paths import catalog_dir, staging_dir

pytestmark = pytest.mark.flow


@pytest.fixture
def small_disk(tmp_path):
    """A 384 KiB filesystem (tmpfs), or a skip where this machine cannot mount one."""
    mount = tmp_path / f"small-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=384k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_one_line_and_leaves_nothing_half_written(prefect_api, micro_catalogs, small_disk):
    home = small_disk / "home"
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "MM15_HOME": str(home), "MM15_WORKERS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mm15.cli", "curate", "--preset", "micro"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith(f"error: no space left on the device writing {staging_dir(home)}/")
    assert "free there" in lines[0]
    assert not catalog_exists(catalog_dir(home))
    leftovers = [p.name for p in staging_dir(home).iterdir() if ".tmp-" in p.name]
    assert leftovers == []  # no half-written shard is visible
    for shard in staging_dir(home).iterdir():  # the finished ones are complete and kept for the rerun
        assert (shard / "_SUCCESS").exists()
