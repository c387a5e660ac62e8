"""`mm15 up` and `mm15 down`: the Prefect and MLflow servers and one Prefect worker per work pool, in the
background, each recorded (pid, command, port) in MM15_HOME/services/NAME.json with its log beside it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Annotated

import typer

from mm15 import paths, services, tracking
from mm15.atomic import write_text_atomic
from mm15.cli.output import say
from mm15.errors import UserError

PREFECT_TIMEOUT = 120.0  # a fresh database migrates first (~25 s here, more on a busy machine)
MLFLOW_TIMEOUT = 90.0  # ~15 s here
SHARED_TIMEOUT = 15.0  # a server someone else runs answers now or is not there
GPU_LIMIT = "gpu"  # as in tasks/limits.py


def up(
    host: Annotated[
        str, typer.Option(help="Interface the servers bind; keep 127.0.0.1 unless others must reach them.")
    ] = "127.0.0.1",
    prefect_port: Annotated[int, typer.Option(help="Port of the Prefect API and UI.")] = 4200,
    mlflow_port: Annotated[int, typer.Option(help="Port of the MLflow tracking server and UI.")] = 5000,
    pools: Annotated[str, typer.Option(help="Work pools to create, one process worker each.")] = "cpu,gpu",
    deploy: Annotated[
        bool, typer.Option("--deploy/--no-deploy", help="Register prefect.yaml's deployments.")
    ] = True,
) -> None:
    """Start in the background: a Prefect server on MM15_HOME/prefect (unless PREFECT_API_URL names one),
    an MLflow server on MM15_HOME/mlflow.db with artifacts in MM15_HOME/mlartifacts (unless
    MLFLOW_TRACKING_URI names an http server), the work pools (process type) and the global concurrency
    limit `gpu`, the deployments of prefect.yaml, and one worker per pool. What already runs is reused.
    Logs and records: MM15_HOME/services/NAME.log and NAME.json. `mm15 down` stops them."""
    names = [p.strip() for p in pools.split(",") if p.strip()]
    if not names or any(not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", n) for n in names):
        raise UserError(f"--pools takes work pool names separated by commas, not {pools!r}")
    if not (paths.PROJECT_ROOT / "prefect.yaml").is_file():
        raise UserError(f"no prefect.yaml in {paths.PROJECT_ROOT}: workers and deployments run from there")
    folder, home, since = services.services_dir(), paths.home(), time.time()
    env = _environment(home)
    api, prefect_ui, prefect = _prefect_server(folder, env, host, prefect_port)
    uri, mlflow_ui, mlflow = _mlflow_server(folder, env, host, mlflow_port)
    _wait(f"{api}/health", prefect, "the Prefect server in PREFECT_API_URL", since)
    _wait(f"{uri}/health", mlflow, "the MLflow server in MLFLOW_TRACKING_URI", since)
    env |= {"PREFECT_API_URL": api, "MLFLOW_TRACKING_URI": uri}

    started = time.monotonic()
    _setup(env, names)
    if deploy:
        _prefect(env, "--no-prompt", "deploy", "--all", what="deploy prefect.yaml")
        say(f"deployments of prefect.yaml: registered in {time.monotonic() - started:.1f} s")
    for pool in names:
        _worker(folder, env, pool, api, uri)

    endpoints = {
        "prefect_api_url": api,
        "prefect_ui": prefect_ui,
        "mlflow_tracking_uri": uri,
        "mlflow_ui": mlflow_ui,
    }
    write_text_atomic(folder / "endpoints.json", json.dumps(endpoints, indent=2) + "\n")
    say("")
    say(f"Prefect UI: {prefect_ui}")
    say(f"MLflow UI:  {mlflow_ui}")
    say("To make mm15 commands use them, run:")
    say(f"  export PREFECT_API_URL={api} MLFLOW_TRACKING_URI={uri}")
    say(f"Logs: {folder}/*.log; stop with: mm15 down")


def down() -> None:
    """Stop what `mm15 up` started (the servers and workers recorded in MM15_HOME/services), workers
    first: SIGTERM to the flow runs a worker started (Prefect marks them Crashed), then to each one's
    process group; SIGKILL after 15 s. Servers it did not start (PREFECT_API_URL's) keep running."""
    folder = services.services_dir()
    stopped = 0
    for name in _stop_order([r.name for r in services.records(folder)]):
        started = time.monotonic()
        if (record := services.stop(folder, name)) is not None:
            say(f"{name}: stopped (pid {record.pid}) in {time.monotonic() - started:.1f} s")
            stopped += 1
    (folder / "endpoints.json").unlink(missing_ok=True)
    if not stopped:
        say(f"nothing running from `mm15 up` (no live records in {folder})")


def _stop_order(names: list[str]) -> list[str]:
    """Workers first, then the servers they talk to."""
    return sorted(names, key=lambda n: (n in ("prefect", "mlflow"), n))


def _environment(home: Path) -> dict[str, str]:
    """What every service gets: this environment, this venv's executables first, the mm15 home."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(services.executable("python").parent), env.get("PATH", "")])
    env["MM15_HOME"] = str(home)
    env.setdefault("PREFECT_HOME", str(home / "prefect"))
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    return env


def _client_host(host: str) -> str:
    """Where a client on this machine reaches a server bound to HOST."""
    return {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(
        host, f"[{host}]" if ":" in host else host
    )


def _prefect_server(folder: Path, env: dict, host: str, port: int) -> tuple[str, str, services.Record | None]:
    """(API URL, UI URL, record): the shared server of PREFECT_API_URL, or ours, started if needed."""
    if shared := os.environ.get("PREFECT_API_URL"):
        api = shared.rstrip("/")
        say(f"prefect: using the server in PREFECT_API_URL, {api} (not started, not stopped by `mm15 down`)")
        return api, api.removesuffix("/api"), None
    ui = f"http://{_client_host(host)}:{port}"
    command = [str(services.executable("prefect")), "server", "start"]
    command += ["--host", host, "--port", str(port), "--analytics-off"]
    Path(env["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    server_env = env | {"PREFECT_SERVER_API_HOST": host, "PREFECT_SERVER_API_PORT": str(port)}
    hint = " (choose another with --prefect-port, or set PREFECT_API_URL to use a server that runs)"
    record = _start(folder, "prefect", command, hint, port=port, host=host, url=ui, env=server_env)
    return f"{record.url}/api", record.url, record


def _mlflow_server(folder: Path, env: dict, host: str, port: int) -> tuple[str, str, services.Record | None]:
    """(tracking URI, UI URL, record): the http server of MLFLOW_TRACKING_URI, or ours on the local store."""
    shared = os.environ.get("MLFLOW_TRACKING_URI", "")
    if shared.startswith(("http://", "https://")):
        uri = shared.rstrip("/")
        say(
            f"mlflow: using the server in MLFLOW_TRACKING_URI, {uri} (not started, not stopped by `mm15 down`)"
        )
        return uri, uri, None
    store = tracking.tracking_uri()  # sqlite:///$MM15_HOME/mlflow.db, the store local runs use
    artifacts = tracking.artifact_root() or (paths.home() / "mlartifacts").as_uri()
    if store.startswith("sqlite:///"):
        Path(store.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    ui = f"http://{_client_host(host)}:{port}"
    command = [str(services.executable("mlflow")), "server", "--host", host, "--port", str(port)]
    command += ["--backend-store-uri", store, "--artifacts-destination", artifacts, "--workers", "1"]
    hint = " (choose another with --mlflow-port, or set MLFLOW_TRACKING_URI to use a server that runs)"
    record = _start(folder, "mlflow", command, hint, port=port, host=host, url=ui, env=env)
    return record.url, record.url, record


def _start(folder: Path, name: str, command: list[str], hint: str = "", **options) -> services.Record:
    try:
        record, started = services.start(folder, name, command, cwd=paths.PROJECT_ROOT, **options)
    except UserError as e:
        raise UserError(f"{e}{hint}") from None
    state = "started" if started else "already running"
    say(f"{name}: {state} (pid {record.pid}{f', {record.url}' if record.url else ''}); log: {record.log}")
    return record


def _wait(url: str, record: services.Record | None, shared: str, since: float) -> None:
    """Wait for a server to answer; say how long it took when this command started it (at SINCE)."""
    if record is None:
        services.wait_healthy(url, timeout=SHARED_TIMEOUT, what=shared)
        return
    fresh = record.started >= since
    timeout = PREFECT_TIMEOUT if record.name == "prefect" else MLFLOW_TIMEOUT
    services.wait_healthy(url, timeout=timeout, record=record)
    if fresh:
        say(f"{record.name}: healthy {time.time() - record.started:.1f} s after it started")


def _setup(env: dict, pools: list[str]) -> None:
    """Create the work pools and the `gpu` limit, in parallel; those that exist are left as they are."""
    commands = {f"work pool {p}": ["work-pool", "create", p, "--type", "process"] for p in pools}
    commands[f"concurrency limit {GPU_LIMIT}"] = ["gcl", "create", GPU_LIMIT, "--limit", str(_gpu_slots())]
    running = {what: _popen(env, *args) for what, args in commands.items()}
    for what, process in running.items():
        output = process.communicate()[0]
        if process.returncode == 0:
            say(f"{what}: created")
        elif "already exists" in " ".join(output.split()):
            say(f"{what}: exists")
        else:
            raise UserError(f"prefect could not create {what}: {_last_line(output)}")


def _gpu_slots() -> int:
    """One slot per visible GPU, at least one (tasks/limits.py decides the same without a server)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return max(1, len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"]))
    if smi := shutil.which("nvidia-smi"):
        try:
            out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            return 1
        return max(1, sum(line.startswith("GPU ") for line in out.splitlines()))
    return 1


def _popen(env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(services.executable("prefect")), *args],
        cwd=paths.PROJECT_ROOT,
        env=env | {"COLUMNS": "200"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _prefect(env: dict, *args: str, what: str) -> None:
    process = _popen(env, *args)
    output = process.communicate()[0]
    if process.returncode != 0:
        raise UserError(f"prefect could not {what}: {_last_line(output)}")


def _last_line(output: str) -> str:
    lines = [line.strip(" │╭╮╰╯─") for line in output.splitlines()]
    return next((line for line in reversed(lines) if line), "no output")


def _worker(folder: Path, env: dict, pool: str, api: str, uri: str) -> None:
    """A process worker for POOL, with the servers' URLs and MM15_HOME in its (and its runs') environment.
    One started against other servers is replaced."""
    name, settings = (
        f"worker-{pool}",
        {"PREFECT_API_URL": api, "MLFLOW_TRACKING_URI": uri, "MM15_HOME": env["MM15_HOME"]},
    )
    current = services.running(folder, name)
    if current is not None and current.settings != settings:
        say(f"{name}: restarting (it ran against {current.settings.get('PREFECT_API_URL')})")
        services.stop(folder, name)
    command = [str(services.executable("prefect")), "worker", "start", "--pool", pool]
    _start(folder, name, command, settings=settings, env=env)
