"""Curation on Dask (MM15_TASK_RUNNER=dask): the catalog the default process pool builds, from a temporary
local cluster and from an existing cluster named by MM15_DASK_ADDRESS (staging through a file:// URL)."""

from __future__ import annotations

import pytest
import yaml

import flows.curate
from flows.curate import curate
from mm15.catalog import open_catalog
from mm15.errors import UserError
from mm15.paths import catalog_dir
from tasks.runners import curation_task_runner
from tests.conftest import MICRO_PRESET

MICRO_TOTAL = 60 + 20 + 40 + 20 + 20
MICRO_SHARDS = 8


def catalog_counts(home) -> dict:
    """What a curation committed: samples per category and split, rejects per reason, and every row."""
    with open_catalog(catalog_dir(home)) as catalog:
        return {
            sql: catalog.query(sql)[1]
            for sql in (
                "SELECT category, split, count(*) FROM samples GROUP BY ALL ORDER BY ALL",
                "SELECT source, split, reason, count(*) FROM rejects GROUP BY ALL ORDER BY ALL",
                "SELECT source, split, key, sample_id FROM samples ORDER BY ALL",
                "SELECT source, split, read, kept, quarantined, duplicates, contaminated FROM ingests ORDER BY ALL",
            )
        }


@pytest.fixture(scope="module")
def micro(prefect_api, tmp_path_factory):
    """MM15_CATALOGS with the micro preset and MM15_WORKERS=2, for the module (a MonkeyPatch of its own)."""
    folder = tmp_path_factory.mktemp("dask") / "catalogs"
    (folder / "sources").mkdir(parents=True)
    (folder / "synthetic.yaml").write_text(yaml.safe_dump(MICRO_PRESET))
    with pytest.MonkeyPatch.context() as patch:
        for name in ("MM15_TASK_RUNNER", "MM15_DASK_ADDRESS", "MM15_STAGING_URL"):
            patch.delenv(name, raising=False)
        patch.setenv("MM15_CATALOGS", str(folder))
        patch.setenv("MM15_WORKERS", "2")
        yield folder


@pytest.fixture(scope="module")
def default_counts(micro, tmp_path_factory) -> dict:
    """The catalog of the micro preset curated on the default process pool."""
    home = tmp_path_factory.mktemp("default-runner") / "home"
    result = curate(preset="micro", home=str(home))
    assert result["committed"] and sum(a["read"] for a in result["accounting"]) == MICRO_TOTAL
    return catalog_counts(home)


@pytest.fixture(scope="module")
def cluster(micro):
    """An existing Dask cluster: two worker processes of one thread."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        yield cluster


@pytest.mark.flow
@pytest.mark.slow
def test_a_temporary_local_cluster_builds_the_default_catalog(default_counts, tmp_path, monkeypatch):
    from prefect_dask import DaskTaskRunner

    runners = []

    def noted():
        runners.append(curation_task_runner())
        return runners[-1]

    monkeypatch.setattr(flows.curate, "curation_task_runner", noted)
    monkeypatch.setenv("MM15_TASK_RUNNER", "dask")
    home = tmp_path / "home"
    result = curate(preset="micro", home=str(home))
    assert result["committed"] and catalog_counts(home) == default_counts
    (runner,) = runners
    assert isinstance(runner, DaskTaskRunner) and runner.address is None
    assert type(runner._cluster).__name__ == "LocalCluster"  # it started one, of MM15_WORKERS processes
    assert runner.cluster_kwargs == {"n_workers": 2, "threads_per_worker": 1, "processes": True}


@pytest.mark.flow
@pytest.mark.slow
def test_an_existing_cluster_and_a_staging_url_build_the_default_catalog(
    default_counts, cluster, tmp_path, monkeypatch
):
    from distributed import Client

    shared = tmp_path / "shared-staging"
    monkeypatch.setenv("MM15_TASK_RUNNER", "dask")
    monkeypatch.setenv("MM15_DASK_ADDRESS", cluster.scheduler_address)
    monkeypatch.setenv("MM15_STAGING_URL", shared.as_uri())
    home = tmp_path / "home"
    result = curate(preset="micro", home=str(home))
    assert result["committed"] and catalog_counts(home) == default_counts
    with Client(cluster.scheduler_address) as client:
        executed = client.run(lambda dask_worker: dask_worker.state.executed_count)
    assert sum(executed.values()) == MICRO_SHARDS  # every shard was staged on the cluster's workers
    assert shared.is_dir() and list(shared.iterdir()) == []  # staged there, freed once committed
    assert not (home / "staging").exists()

    again = curate(preset="micro", home=str(home))  # nothing new: no shard is staged again
    assert not again["committed"]
    with Client(cluster.scheduler_address) as client:
        assert sum(client.run(lambda dask_worker: dask_worker.state.executed_count).values()) == MICRO_SHARDS


def test_the_runner_follows_the_environment(monkeypatch):
    from prefect.task_runners import ProcessPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    for name in ("MM15_TASK_RUNNER", "MM15_DASK_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MM15_WORKERS", "3")
    default = curation_task_runner()
    assert isinstance(default, ProcessPoolTaskRunner) and default._max_workers == 3
    monkeypatch.setenv("MM15_TASK_RUNNER", "Dask")
    local = curation_task_runner()
    assert isinstance(local, DaskTaskRunner) and local.address is None
    assert local.cluster_kwargs == {"n_workers": 3, "threads_per_worker": 1, "processes": True}
    monkeypatch.setenv("MM15_DASK_ADDRESS", "tcp://10.0.0.5:8786")
    assert curation_task_runner().address == "tcp://10.0.0.5:8786"


def test_an_unknown_runner_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv("MM15_TASK_RUNNER", "spark")
    with pytest.raises(UserError) as error:
        curation_task_runner()
    assert str(error.value) == "MM15_TASK_RUNNER='spark' is not a task runner: use one of process, dask"


@pytest.mark.flow
def test_an_unknown_runner_fails_the_curation_before_it_plans(micro, tmp_path, monkeypatch):
    monkeypatch.setenv("MM15_TASK_RUNNER", "spark")
    home = tmp_path / "home"
    with pytest.raises(UserError, match="MM15_TASK_RUNNER='spark' is not a task runner"):
        curate(preset="micro", home=str(home))
    assert not catalog_dir(home).exists() and not (home / "staging").exists()
