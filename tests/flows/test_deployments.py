"""prefect.yaml deploys as written: the deployments, their schedules and the work pool they run on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.flow

ROOT = Path(__file__).resolve().parents[2]


def prefect(env, *args):
    cli = Path(sys.executable).with_name("prefect")
    return subprocess.run([str(cli), *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_deploy_all_registers_scheduled_deployments(prefect_api):
    from prefect import get_client

    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    for pool in ("cpu", "gpu"):
        created = prefect(env, "work-pool", "create", pool, "--type", "process", "--overwrite")
        assert created.returncode == 0, created.stdout + created.stderr
    deployed = prefect(env, "--no-prompt", "deploy", "--all")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr

    with get_client(sync_client=True) as client:
        deployments = {d.name: d for d in client.read_deployments()}
        assert {"curate-nightly", "pipeline-weekly", "ingest", "continual-pretrain", "sft"} <= set(
            deployments
        )
        for training in ("continual-pretrain", "sft"):
            assert deployments[training].work_pool_name == "gpu"
            assert "CUDA_VISIBLE_DEVICES" in deployments[training].job_variables["env"]
        nightly = deployments["curate-nightly"]
        assert nightly.work_pool_name == "cpu" and nightly.parameters == {"preset": "tiny"}
        assert [s.schedule.cron for s in nightly.schedules] == ["0 2 * * *"]
        assert nightly.entrypoint == "flows/curate.py:curate"
