"""The curation flows end to end, against a real Prefect API, writing a real DuckLake catalog."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest
from prefect import task

import flows.curate
from flows.curate import curate
from mm15.catalog import open_catalog
from mm15.paths import PROJECT_ROOT, catalog_dir, staging_dir
from tasks.curate import commit

pytestmark = pytest.mark.flow

MICRO_TOTAL = 60 + 20 + 40 + 20 + 20


def catalog_rows(home) -> list[tuple]:
    with open_catalog(catalog_dir(home)) as catalog:
        return catalog.query("SELECT source, split, key, sample_id FROM samples ORDER BY ALL")[1]


def test_curate_builds_a_snapshot_and_a_rerun_adds_nothing(prefect_api, micro_catalogs, home):
    first_state = curate(preset="micro", home=str(home), return_state=True)
    first = first_state.result()
    assert first["committed"]
    assert (
        len([n for n in task_run_names(first_state.state_details.flow_run_id) if n.startswith("stage-")]) == 8
    )
    read = sum(a["read"] for a in first["accounting"])
    assert read == MICRO_TOTAL
    for a in first["accounting"]:
        assert a["read"] == a["kept"] + a["quarantined"] + a["duplicates"] + a["contaminated"]
    rows = catalog_rows(home)
    assert len(rows) == sum(a["kept"] for a in first["accounting"]) > 0.9 * MICRO_TOTAL
    assert {r[0] for r in rows} == {"syn_general", "syn_text_only", "pdfa"}
    assert not list(staging_dir(home).glob("*/_SUCCESS"))  # staged shards are freed once committed

    state = curate(preset="micro", home=str(home), return_state=True)
    again = state.result()
    assert not again["committed"] and again["snapshot"] == first["snapshot"]
    assert catalog_rows(home) == rows
    # finishes fast because no shard is generated or validated again: the rerun ran no staging task
    task_names = task_run_names(state.state_details.flow_run_id)
    assert "plan_shards" in " ".join(task_names)
    assert not [n for n in task_names if n.startswith("stage-")]


def task_run_names(flow_run_id) -> list[str]:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return [r.name for r in runs]


def test_curation_publishes_artifacts(prefect_api, micro_catalogs, home):
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    state = curate(preset="micro", home=str(home), return_state=True)
    flow_run_id = state.state_details.flow_run_id  # this run's artifact: other tests share the API
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["curation-accounting"]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
            )
        )
    assert len(found) == 1
    table = found[0].data
    assert "syn_general" in str(table) and "quarantined" in str(table)


# Run in a child process: the `curate` flow with its commit step replaced by one that reports it has
# been reached (every shard staged, nothing committed yet) and then hangs until the test kills it.
AT_COMMIT = """
import os, sys, time
from pathlib import Path

from prefect import task

import flows.curate

signal_file, home = Path(sys.argv[1]), sys.argv[2]


@task(name="commit")
def commit(specs, staging, catalog, message):
    ready = signal_file.with_suffix(".tmp")
    ready.write_text(str(len(specs)))
    os.replace(ready, signal_file)  # the test sees the whole file or none
    while True:
        time.sleep(60)


flows.curate.commit = commit
flows.curate.curate(preset="micro", home=home)
"""


def staged_shards(home) -> dict[str, list[tuple]]:
    """Per staged shard folder: the identity (inode, mtime) and size of it and of each of its files."""

    def identity(path):
        info = path.stat()
        return (path.name, info.st_ino, info.st_mtime_ns, info.st_size)

    return {
        folder.name: [identity(folder)] + [identity(f) for f in sorted(folder.iterdir())]
        for folder in staging_dir(home).iterdir()
    }


def test_killed_curation_resumes_without_duplicates_or_losses(
    prefect_api, micro_catalogs, home, tmp_path, monkeypatch
):
    at_commit, log = tmp_path / "at-commit", tmp_path / "child.log"
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_api,
        "MM15_HOME": str(home),
        "MM15_CATALOGS": str(micro_catalogs),
        "MM15_WORKERS": "1",
    }
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", AT_COMMIT, str(at_commit), str(home)],
            cwd=PROJECT_ROOT,
            env=env,
            start_new_session=True,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 300
        while not at_commit.exists():
            if proc.poll() is not None:
                pytest.fail(
                    f"the curation exited ({proc.returncode}) before its commit step:\n{log.read_text()}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"the curation did not reach its commit step in 300 s:\n{log.read_text()}")
            time.sleep(0.1)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the flow and its process pool's workers
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    # killed at the commit step: every shard staged and complete, nothing committed
    assert at_commit.read_text() == "8"  # the commit step was handed all 8 shards
    staged = sorted(staging_dir(home).iterdir())
    assert len(staged) == 8 and all((shard / "_SUCCESS").exists() for shard in staged)
    assert not catalog_dir(home).exists()

    # resume in this process; the commit step first notes which staged shards it finds
    before_resume = staged_shards(home)
    at_resumed_commit = {}

    @task(name="commit")
    def noting_commit(specs, staging, catalog, message):
        at_resumed_commit.update(staged_shards(home))
        return commit.fn(specs, staging, catalog, message=message)

    with monkeypatch.context() as patch:
        patch.setattr(flows.curate, "commit", noting_commit)
        state = curate(preset="micro", home=str(home), return_state=True)
    resumed = state.result()
    assert resumed["committed"]
    assert "plan_shards" in " ".join(task_run_names(state.state_details.flow_run_id))
    # no shard was staged again: the commit found the very folders and files the killed run wrote
    assert at_resumed_commit == before_resume
    assert sum(a["read"] for a in resumed["accounting"]) == MICRO_TOTAL
    clean_home = tmp_path / "clean"
    curate(preset="micro", home=str(clean_home))
    assert catalog_rows(home) == catalog_rows(clean_home)
    with open_catalog(catalog_dir(home)) as catalog:
        assert catalog.query("SELECT count(*) FROM rejects WHERE reason = 'duplicate'")[1] == [(0,)]
