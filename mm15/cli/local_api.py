"""A temporary Prefect API server for one command, started as the command begins so that its start-up
(a database migration on a fresh home) overlaps with the command loading its code. Started as
Prefect's own temporary server is (uvicorn on the server app, UI off), without importing Prefect here."""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from mm15.errors import UserError


class TemporaryApi:
    """One `prefect.server.api.server:create_app` on a free loopback port, its log in PREFECT_HOME."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/api"
        self.log = Path(os.environ.get("PREFECT_HOME", ".")) / "temporary-api.log"
        self.started = time.perf_counter()
        self.ready: float | None = None
        self.waited = 0.0  # what the command waited for it
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "prefect.server.api.server:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "error",
            "--lifespan",
            "on",
        ]
        env = os.environ | {
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
        }
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        atexit.register(self.stop)

    def wait(self, timeout: float) -> float:
        """Block until the API answers; the seconds this call waited."""
        asked = time.perf_counter()
        deadline = asked + timeout
        while self.ready is None:
            if self.process.poll() is not None:
                raise UserError(
                    f"the temporary Prefect API exited with code {self.process.returncode}: see {self.log}"
                )
            if time.perf_counter() > deadline:
                self.stop()
                raise UserError(
                    f"the temporary Prefect API did not start within {timeout:.0f} s: see {self.log}"
                )
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.url}/health", timeout=2) as answer,
            ):
                if answer.status == 200:
                    self.ready = time.perf_counter()
                    break
            time.sleep(0.2)
        return time.perf_counter() - asked

    @property
    def start_seconds(self) -> float:
        return (self.ready or time.perf_counter()) - self.started

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
