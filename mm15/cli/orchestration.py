"""Running flows from the command line: local Prefect state under MM15_HOME unless a server is named."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mm15 import paths
from mm15.cli.local_api import TemporaryApi
from mm15.errors import UserError


def use_local_prefect() -> None:
    """Local Prefect state under MM15_HOME unless the user points at a server (PREFECT_API_URL)."""
    os.environ.setdefault("PREFECT_HOME", str(paths.home() / "prefect"))
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # The temporary API needs no block types: not registering them saves ~12 s on a fresh database.
    os.environ.setdefault("PREFECT_API_BLOCKS_REGISTER_ON_START", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    global _api
    if _api is None and not _api_named():
        _api = TemporaryApi()  # starts now, while the command goes on loading its code
        # Named before Prefect loads, so every part of it (and every process it starts) uses this one.
        os.environ["PREFECT_API_URL"] = _api.url
        # Links to runs (model lineage tags) point where `mm15 up` serves this database once this API is gone.
        os.environ.setdefault("PREFECT_UI_URL", "http://127.0.0.1:4200")


_api: TemporaryApi | None = None  # this command's temporary API, once asked for


def _api_named() -> bool:
    """Whether a Prefect API is named: in the environment or, once Prefect is loaded (tests, notebooks),
    in its settings."""
    if os.environ.get("PREFECT_API_URL"):
        return True
    if "prefect.settings" in sys.modules:
        from prefect.settings import PREFECT_API_URL

        return bool(PREFECT_API_URL.value())
    return False


class _NoTracebackForUserErrors(logging.Filter):
    """Drop Prefect's error logs about a UserError: the CLI prints it as one line itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        while error is not None:
            if isinstance(error, UserError):
                return False
            error = error.__cause__ or error.__context__
        message = record.getMessage()
        return not (record.levelno >= logging.ERROR and any(f"{n}:" in message for n in _USER_ERROR_NAMES))


_USER_ERROR_NAMES = ("UserError", "ConfigError")


def run_flow(flow: Callable[..., Any], /, **parameters: Any) -> Any:
    """Run a Prefect flow (imported after `use_local_prefect()`) with these parameters, against one
    Prefect API for the whole command. A UserError raised inside it reaches the caller without
    Prefect's tracebacks on the terminal."""
    return run_flow_timed(flow, **parameters)[0]


@dataclass
class Timing:
    """Where the wall time of a flow run went, as its Prefect API recorded it."""

    wall: float  # seconds from asking for the flow run (and the API, if it still starts) to its end
    in_tasks: float  # seconds during which at least one task ran (the work)
    api_start: float = 0.0  # the temporary API's start-up (0 against PREFECT_API_URL), partly overlapped
    api_wait: float = 0.0  # the part of it the command waited for
    stages: list[tuple[str, float]] = field(default_factory=list)  # the flow's subflows, in order

    @property
    def overhead(self) -> float:
        """Prefect's share: waiting for the API, creating runs and moving states between the work."""
        return max(0.0, self.wall - self.in_tasks)


def run_flow_timed(flow: Callable[..., Any], /, **parameters: Any) -> tuple[Any, Timing]:
    """`run_flow`, and the Timing of the run."""
    quiet = _NoTracebackForUserErrors()
    handlers = [h for name in ("prefect", "") for h in logging.getLogger(name).handlers]
    handlers += [h for logger in _prefect_loggers() for h in logger.handlers]
    for handler in set(handlers):
        handler.addFilter(quiet)
    started = time.perf_counter()
    try:
        with _one_api() as api:
            state = flow(**parameters, return_state=True)
            wall = time.perf_counter() - started
            result = state.result()
            timing = _timing(state.state_details.flow_run_id, wall)
            if api is not None:
                timing.api_start, timing.api_wait = api.start_seconds, api.waited
            return result, timing
    finally:
        for handler in set(handlers):
            handler.removeFilter(quiet)


def _timing(flow_run_id, wall: float) -> Timing:
    """Read back the flow run's tree of subflows and tasks; the union of the task runs' intervals is the
    time spent working (subflows' own placeholder task runs left out)."""
    from prefect import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
        TaskRunFilter,
        TaskRunFilterFlowRunId,
        TaskRunFilterSubFlowRuns,
    )

    with get_client(sync_client=True) as client:
        names = {f.id: f.name for f in client.read_flows()}
        tree, level, stages = [flow_run_id], [flow_run_id], []
        while level:
            children = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=level))
            )
            if not stages:  # the first level: the stages of the flow
                started = sorted((c for c in children if c.start_time), key=lambda c: c.start_time)
                stages = [(names.get(c.flow_id, c.name), _seconds(c)) for c in started]
            level = [c.id for c in children]
            tree += level
        only_tasks = TaskRunFilter(
            flow_run_id=TaskRunFilterFlowRunId(any_=tree),
            subflow_runs=TaskRunFilterSubFlowRuns(exists_=False),
        )
        tasks, page = [], [None]
        while page:  # the API answers at most 200 at a time
            page = client.read_task_runs(task_run_filter=only_tasks, offset=len(tasks), limit=200)
            tasks += page
    intervals = sorted((t.start_time, t.end_time) for t in tasks if t.start_time and t.end_time)
    busy, reach = 0.0, None
    for start, end in intervals:
        if reach is None or start > reach:
            busy += (end - start).total_seconds()
            reach = end
        elif end > reach:
            busy += (end - reach).total_seconds()
            reach = end
    return Timing(wall, busy, stages=stages)


def _seconds(run) -> float:
    return (run.end_time - run.start_time).total_seconds() if run.end_time and run.start_time else 0.0


@contextmanager
def _one_api() -> Iterator[TemporaryApi | None]:
    """Without PREFECT_API_URL, one temporary API server for this command (started by
    `use_local_prefect`), which the flow and the worker processes it starts all use (left alone, each
    worker process would start a server of its own)."""
    global _api
    from prefect.settings import PREFECT_API_URL, temporary_settings

    api, _api = _api, None
    if api is None and PREFECT_API_URL.value():  # the user's server
        yield None
        return
    api = api or TemporaryApi()
    try:
        api.waited = api.wait(float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", 120)))
        with temporary_settings(updates={PREFECT_API_URL: api.url}):
            yield api
    finally:
        api.stop()
        if os.environ.get("PREFECT_API_URL") == api.url:
            del os.environ["PREFECT_API_URL"]


def _prefect_loggers() -> list[logging.Logger]:
    return [
        logger
        for name, logger in logging.Logger.manager.loggerDict.items()
        if name.startswith("prefect") and isinstance(logger, logging.Logger)
    ]
