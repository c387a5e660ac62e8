"""Commands without PREFECT_API_URL run against one temporary Prefect API, shared by their worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def descendants(root: int) -> list[tuple[int, str]]:
    """(pid, command line) of every process below `root`, read from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    found, frontier = [], {root}
    while frontier:
        children = {pid for pid, parent in parents.items() if parent in frontier}
        for pid in children:
            try:
                found.append(
                    (pid, (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode())
                )
            except OSError:
                continue
        frontier = children
    return found


def test_worker_processes_share_the_commands_api(micro_catalogs, home):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {"MM15_HOME": str(home), "MM15_CATALOGS": str(micro_catalogs), "MM15_WORKERS": "2"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mm15.cli", "curate", "--preset", "micro"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    most_servers, workers_seen = 0, False
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        tree = descendants(proc.pid)
        most_servers = max(most_servers, sum("uvicorn" in cmd for _, cmd in tree))
        workers_seen |= sum("multiprocessing" in cmd for _, cmd in tree) > 0
        time.sleep(0.1)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Committed snapshot 2" in out
    assert workers_seen  # the stage tasks did run in worker processes
    assert most_servers == 1
