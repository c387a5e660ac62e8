"""Running flows from the command line: local Prefect state under MM15_HOME unless a server is named."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mm15 import paths
from mm15.errors import UserError


def use_local_prefect() -> None:
    """Local Prefect state under MM15_HOME unless the user points at a server (PREFECT_API_URL)."""
    os.environ.setdefault("PREFECT_HOME", str(paths.home() / "prefect"))
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


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
    quiet = _NoTracebackForUserErrors()
    handlers = [h for name in ("prefect", "") for h in logging.getLogger(name).handlers]
    handlers += [h for logger in _prefect_loggers() for h in logger.handlers]
    for handler in set(handlers):
        handler.addFilter(quiet)
    try:
        with _one_api():
            return flow(**parameters)
    finally:
        for handler in set(handlers):
            handler.removeFilter(quiet)


@contextmanager
def _one_api() -> Iterator[None]:
    """Without PREFECT_API_URL, start one local API server for this command and point the flow, and the
    worker processes it starts, at it (left alone, each worker process would start a server of its own)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value():
        yield
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start()
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            yield
    finally:
        server.stop()


def _prefect_loggers() -> list[logging.Logger]:
    return [
        logger
        for name, logger in logging.Logger.manager.loggerDict.items()
        if name.startswith("prefect") and isinstance(logger, logging.Logger)
    ]
