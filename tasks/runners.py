"""The task runner that stages curation shards, chosen from the environment of the process running the
flow (the CLI, or a deployment's worker) each time a curation runs:

- by default a process pool of MM15_WORKERS processes (default: all cores);
- MM15_TASK_RUNNER=dask: Dask through prefect-dask, on the cluster whose scheduler is at
  MM15_DASK_ADDRESS (tcp://host:port), or else on a temporary local cluster of MM15_WORKERS
  single-threaded processes (shards are CPU-bound Python: one thread per process).
"""

from __future__ import annotations

import os

from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner

from mm15.errors import UserError

TASK_RUNNERS = ("process", "dask")


def workers() -> int:
    return int(os.environ.get("MM15_WORKERS") or os.cpu_count() or 1)


def curation_task_runner() -> TaskRunner:
    """A new, unstarted task runner as the environment asks (nothing starts until it is entered)."""
    choice = os.environ.get("MM15_TASK_RUNNER", "").strip().lower() or "process"
    if choice == "process":
        return ProcessPoolTaskRunner(max_workers=workers())
    if choice == "dask":
        from prefect_dask import DaskTaskRunner  # imports dask: only when asked for

        if address := os.environ.get("MM15_DASK_ADDRESS", "").strip():
            return DaskTaskRunner(address=address)
        return DaskTaskRunner(
            cluster_class="distributed.LocalCluster",
            cluster_kwargs={"n_workers": workers(), "threads_per_worker": 1, "processes": True},
        )
    raise UserError(f"MM15_TASK_RUNNER={choice!r} is not a task runner: use one of {', '.join(TASK_RUNNERS)}")
