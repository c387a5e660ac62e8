"""Several processes on one catalog: readers never fail while another process commits, and commits that
overlap (without the curation flow's file lock, as on two machines sharing a catalog) both land, each
deciding on the snapshot the other left."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict

import pytest

from mm15.catalog import open_catalog
from tests.lake import Lake, sample

WRITER = """
import json, sys
from pathlib import Path
from mm15.catalog import connection, open_catalog
from mm15.catalog.commit import commit_shards
from mm15.catalog.staging import ShardSpec

conflicts = 0
is_conflict = connection.is_conflict


def counted(error):
    global conflicts
    conflicts += is_conflict(error)
    return is_conflict(error)


connection.is_conflict = counted
root, staging, commits = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
sys.stdin.readline()  # start together
for specs in commits:
    with open_catalog(root, read_only=False) as catalog:
        result = commit_shards(catalog, staging, [ShardSpec(**s) for s in specs], message="concurrent")
    print(json.dumps({"snapshot": result.snapshot, "committed": result.committed}), flush=True)
print(json.dumps({"conflicts": conflicts}), flush=True)
"""


def _start_writer(lake: Lake, commits: list[list]) -> subprocess.Popen:
    groups = json.dumps([[asdict(s) for s in specs] for specs in commits])
    command = [sys.executable, "-c", WRITER, str(lake.root), str(lake.staging), groups]
    return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def _finish(writer: subprocess.Popen) -> list[dict]:
    out, _ = writer.communicate(timeout=300)
    assert writer.returncode == 0
    return [json.loads(line) for line in out.splitlines()]


ROUNDS = 2  # commits of each writer, besides the shard that both commit


@pytest.mark.slow  # two processes, seven commits and their retries: about ten seconds
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_overlapping_commits_of_two_processes_lose_nothing_and_keep_nothing_twice(backend, tmp_path, request):
    if backend == "postgres":
        request.getfixturevalue("postgres_catalog")
    lake = Lake(tmp_path)
    lake.commit([lake.stage("base", [sample("base", "k0", (500,))])])
    # Round i: a:k<i> and b:k<i> are the same sample from two sources (one survives, whichever commits
    # first), a:x<i> and b:y<i> are their own. Both writers also commit the same last shard.
    first = [
        [lake.stage("a", [sample("a", f"k{i}", (10 + i,)), sample("a", f"x{i}", (100 + i,))], start=i)]
        for i in range(ROUNDS)
    ]
    second = [
        [lake.stage("b", [sample("b", f"k{i}", (10 + i,)), sample("b", f"y{i}", (200 + i,))], start=i)]
        for i in range(ROUNDS)
    ]
    both = [lake.stage("s", [sample("s", "k0", (300,))])]
    writers = [_start_writer(lake, first + [both]), _start_writer(lake, second + [both])]
    for writer in writers:
        writer.stdin.write("go\n")
        writer.stdin.flush()
    reports = [_finish(w) for w in writers]

    assert lake.query("SELECT count(*) FROM samples") == [(1 + 3 * ROUNDS + 1,)]
    assert lake.query("SELECT count(*), count(DISTINCT shard) FROM shards") == [(2 * ROUNDS + 2,) * 2]
    keys = lake.query("SELECT source, key FROM samples WHERE key LIKE 'k%' AND source IN ('a', 'b')")
    assert sorted(k for _, k in keys) == [f"k{i}" for i in range(ROUNDS)]  # one copy of each
    rejects = lake.query("SELECT reason, count(*) FROM rejects GROUP BY ALL")
    assert rejects == [("duplicate", ROUNDS)]
    ((read, kept, duplicates),) = lake.query("SELECT sum(read), sum(kept), sum(duplicates) FROM ingests")
    assert (read, kept, duplicates) == (2 + 4 * ROUNDS, 2 + 3 * ROUNDS, ROUNDS)
    # The shard both wrote was committed by one of them; the other found it there.
    last = [r[-2] for r in reports]
    assert sorted(r["committed"] for r in last) == [False, True]
    snapshots = [r["snapshot"] for report in reports for r in report[:-1] if r["committed"]]
    assert len(set(snapshots)) == len(snapshots) == 2 * ROUNDS + 1
    with open_catalog(lake.root, read_only=False) as catalog:  # the tries that lost left no files behind
        orphans = "CALL ducklake_delete_orphaned_files('lake', cleanup_all => true, dry_run => true)"
        assert catalog.con.execute(orphans).fetchall() == []
    print(f"{backend}: commit conflicts retried: {[r[-1]['conflicts'] for r in reports]}")


READER = """
import json, sys, time
from pathlib import Path
from mm15.catalog import open_catalog
root, stop = Path(sys.argv[1]), Path(sys.argv[2])
counts, failures = [], []
while not stop.exists():
    try:
        with open_catalog(root) as catalog:
            counts.append(catalog.query("SELECT count(*) FROM samples")[1][0][0])
    except Exception as e:
        failures.append(f"{type(e).__name__}: {e}")
print(json.dumps({"counts": counts, "failures": failures}))
"""
COMMITS, PER_COMMIT = 3, 3


@pytest.mark.slow  # a reader process, a writer process and the command line in a loop: about 15 s
def test_readers_never_fail_while_another_process_commits(tmp_path):
    lake = Lake(tmp_path)
    lake.commit([lake.stage("base", [sample("base", "k0", (500,))])])
    commits = [
        [lake.stage(f"s{c}", [sample(f"s{c}", f"k{i}", (1000 + 10 * c + i,)) for i in range(PER_COMMIT)])]
        for c in range(COMMITS)
    ]
    committed = {1 + PER_COMMIT * c for c in range(COMMITS + 1)}  # the counts a reader may see
    stop = tmp_path / "stop"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(lake.root), str(stop)], stdout=subprocess.PIPE, text=True
    )
    writer = _start_writer(lake, commits)
    writer.stdin.write("go\n")
    writer.stdin.flush()
    cli_counts, cli_failures = [], []
    while writer.poll() is None:  # the command line, meanwhile
        command = [
            sys.executable,
            "-m",
            "mm15.cli",
            "catalog",
            "sql",
            "--json",
            "SELECT count(*) AS n FROM samples",
        ]
        result = subprocess.run(command, env=lake.env(), capture_output=True, text=True, timeout=120)
        if result.returncode:
            cli_failures.append(result.stderr)
        else:
            cli_counts.append(json.loads(result.stdout)[0]["n"])
    reports = _finish(writer)
    stop.touch()
    seen = json.loads(reader.communicate(timeout=120)[0])

    assert sum(r.get("committed", False) for r in reports) == COMMITS
    assert seen["failures"] == [] and cli_failures == []
    assert set(seen["counts"]) <= committed and set(cli_counts) <= committed
    assert seen["counts"] == sorted(seen["counts"]) and cli_counts == sorted(cli_counts)  # never backwards
    assert len(set(seen["counts"])) > 1  # it did read while the commits went on
    assert lake.query("SELECT count(*) FROM samples") == [(max(committed),)]
    print(f"reader: {len(seen['counts'])} queries, CLI: {len(cli_counts)} queries, during {COMMITS} commits")
