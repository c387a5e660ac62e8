"""The catalog under overlapping commands, as users run them: `mm15 catalog sql` in a loop while an
`mm15 ingest` stages and commits, and two ingests of one home at once. With the default catalog (SQLite
metadata) a reader never fails and sees only committed snapshots; overlapping writers both commit and
nothing is lost or kept twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.flow, pytest.mark.slow]

MM15 = [sys.executable, "-m", "mm15.cli"]


def _texts(folder: Path, name: str, lines: int) -> Path:
    """A jsonl-text source of `lines` distinct conversations (distinct across names too)."""
    folder.mkdir(parents=True)
    path = folder / "chat.jsonl"
    with open(path, "w") as f:
        for i in range(lines):
            messages = [
                {"role": "user", "content": f"{name}: what is {i} + {i}?"},
                {"role": "assistant", "content": str(2 * i)},
            ]
            f.write(json.dumps({"messages": messages}) + "\n")
    return path


def _ingest(env: dict, path: Path, name: str) -> subprocess.Popen:
    command = [
        *MM15,
        "ingest",
        str(path),
        "--format",
        "jsonl-text",
        "--name",
        name,
        "--category",
        "text_only",
    ]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _count(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*MM15, "catalog", "sql", "SELECT count(*) AS n FROM samples", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _finish(process: subprocess.Popen) -> str:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    return out


def test_sql_readers_never_fail_while_an_ingest_commits(prefect_api, home, tmp_path):
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "MM15_HOME": str(home)}
    _finish(_ingest(env, _texts(tmp_path / "first", "first", 50), "first"))
    big = _texts(tmp_path / "big", "big", 40_000)

    writer = _ingest(env, big, "big")
    reads: list[tuple[int, str, float]] = []  # (exit code, stdout or stderr, time)
    while writer.poll() is None:
        run = _count(env)
        reads.append((run.returncode, run.stdout if run.returncode == 0 else run.stderr, time.monotonic()))
    _finish(writer)

    failures = [r for r in reads if r[0] != 0]
    assert not failures, failures[:3]
    counts = [json.loads(out)[0]["n"] for _, out, _ in reads]
    assert set(counts) <= {50, 50 + 40_000}, counts  # only committed snapshots, never a partial one
    assert counts.count(50) >= 2, counts  # the loop ran while the ingest was staging and committing
    assert json.loads(_count(env).stdout)[0]["n"] == 50 + 40_000


def test_two_ingests_of_one_home_at_once_both_commit_and_lose_nothing(prefect_api, home, tmp_path):
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "MM15_HOME": str(home)}
    sources = {name: _texts(tmp_path / name, name, 3_000) for name in ("left", "right")}
    both = [_ingest(env, path, name) for name, path in sources.items()]
    outputs = [_finish(p) for p in both]
    assert all("Committed snapshot" in out for out in outputs), outputs

    run = subprocess.run(
        [
            *MM15,
            "catalog",
            "sql",
            "SELECT source, count(*) AS n FROM samples GROUP BY 1 ORDER BY 1",
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == [{"source": "left", "n": 3_000}, {"source": "right", "n": 3_000}]
    snapshots = subprocess.run([*MM15, "catalog", "snapshots"], env=env, capture_output=True, text=True)
    assert snapshots.returncode == 0 and "left" in snapshots.stdout and "right" in snapshots.stdout

    # the same source twice at once: one commits it, the other finds it committed (nothing kept twice)
    again = [_ingest(env, _texts(tmp_path / f"same-{i}", "same", 2_000), "same") for i in range(2)]
    for process in again:
        _finish(process)
    run = _count(env)
    assert json.loads(run.stdout)[0]["n"] == 3_000 + 3_000 + 2_000
