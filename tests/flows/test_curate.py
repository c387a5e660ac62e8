"""The curation flows end to end, against a real Prefect API, writing a real DuckLake catalog."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from flows.curate import curate
from mm15.catalog import open_catalog
from mm15.paths import catalog_dir, staging_dir

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
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    curate(preset="micro", home=str(home))
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["curation-accounting"]))
        )
    assert found
    table = found[-1].data
    assert "syn_general" in str(table) and "quarantined" in str(table)


def test_killed_curation_resumes_without_duplicates_or_losses(prefect_api, micro_catalogs, home, tmp_path):
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "MM15_HOME": str(home), "MM15_WORKERS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mm15.cli", "curate", "--preset", "micro"],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(staging_dir(home).glob("*/_SUCCESS"))) < 2:
        assert proc.poll() is None, "the curation finished before it could be interrupted"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    staged = len(list(staging_dir(home).glob("*/_SUCCESS")))
    assert 2 <= staged < 9  # interrupted mid-way: some shards staged, not all
    assert not (catalog_dir(home) / "meta.ducklake").exists() or catalog_rows(home) == []

    resumed = curate(preset="micro", home=str(home))
    assert sum(a["read"] for a in resumed["accounting"]) == MICRO_TOTAL
    clean_home = tmp_path / "clean"
    curate(preset="micro", home=str(clean_home))
    assert catalog_rows(home) == catalog_rows(clean_home)
    with open_catalog(catalog_dir(home)) as catalog:
        assert catalog.query("SELECT count(*) FROM rejects WHERE reason = 'duplicate'")[1] == [(0,)]
