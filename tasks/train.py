"""Training tasks: run the trainer as a subprocess (torchrun when several devices) while holding a slot of
the global concurrency limit `gpu`, report progress as an artifact, and leave no trainer behind.

The trainer runs in a process group of its own; when the task ends in any way (cancellation of the flow
run included) the group is killed. A finished run folder is returned as it is: the folder is named by
the inputs (stage, preset, manifest, starting weights, settings), so a rerun with nothing changed trains
nothing, and a retried task resumes from its newest checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

from prefect import get_run_logger, runtime, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.concurrency.sync import concurrency

from mm15 import paths
from mm15.train.runs import StageRun
from tasks.limits import ensure_gpu_limit

PID_FILE = "trainer.pid"  # the trainer's process group, for the flows' cancellation hooks
OWNER_FILE = "flow_run_id"  # the flow run that started it


@task(name="train-stage", retries=1, retry_delay_seconds=5)
def train_stage(
    stage: str,
    preset: str,
    home: str,
    init: str | None = None,
    mixture: str | None = None,
    max_steps: int | None = None,
    processes: int = 1,
    heldout: int = 0,
    overrides: dict | None = None,
) -> dict:
    """Train `stage` to its last step (resuming a run of the same inputs); the run's summary."""
    run = StageRun(stage, preset, init, mixture, max_steps, processes, overrides or {})
    out = run.folder(Path(home))
    if finished := _finished(out):
        get_run_logger().info("%s on %s: already trained in %s", stage, preset, out)
        return finished
    command = run.command(out, heldout)
    ensure_gpu_limit()
    with concurrency("gpu", occupy=1, strict=True):
        if not _finished(out):  # an overlapping run with the same inputs may have trained it meanwhile
            run_trainer(command, out, home, stage)
    return json.loads((out / "run.json").read_text())


def _finished(out: Path) -> dict | None:
    """The summary of the run in `out` if it has finished."""
    summary_file = out / "run.json"
    if (
        summary_file.exists()
        and (summary := json.loads(summary_file.read_text())).get("status") == "finished"
    ):
        return summary
    return None


def run_trainer(command: list[str], out: Path, home: str, stage: str) -> None:
    """Run the trainer to its end, updating a progress artifact from its metrics.jsonl."""
    env = {**os.environ, "MM15_HOME": home, "MM15_FLOW_RUN_ID": str(runtime.flow_run.id or "")}
    out.mkdir(parents=True, exist_ok=True)
    log = (out / "trainer.log").open("ab")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    (out / PID_FILE).write_text(str(process.pid))
    (out / OWNER_FILE).write_text(env["MM15_FLOW_RUN_ID"])
    progress = create_progress_artifact(
        0.0, key=f"train-{stage}", description=f"{stage}: optimizer steps done"
    )
    try:
        while process.poll() is None:
            time.sleep(2)
            update_progress_artifact(progress, _percent_done(out))
        update_progress_artifact(progress, _percent_done(out))
    finally:
        if process.poll() is None:  # the task is ending early: take the trainer down with it
            kill_trainer(out)
        log.close()
    if process.returncode != 0:
        tail = (out / "trainer.log").read_text(errors="replace").strip().splitlines()[-5:]
        raise RuntimeError(f"trainer exited with code {process.returncode}: " + " | ".join(tail))


def kill_trainer(out: Path) -> None:
    """Kill the process group of the trainer that wrote `out/trainer.pid`, if it still runs."""
    pid_file = Path(out) / PID_FILE
    if not pid_file.exists():
        return
    with contextlib.suppress(ProcessLookupError, PermissionError, ValueError):  # already gone
        os.killpg(int(pid_file.read_text()), signal.SIGKILL)


def kill_trainers(flow, flow_run, state) -> None:
    """Flow hook: a cancelled or crashed flow run kills the trainers it started."""
    home = Path(flow_run.parameters.get("home") or paths.home())
    for pid_file in (home / "runs").glob(f"*/{PID_FILE}"):
        owner = pid_file.parent / OWNER_FILE
        if owner.exists() and owner.read_text().strip() == str(flow_run.id):
            kill_trainer(pid_file.parent)


def _percent_done(out: Path) -> float:
    summary, metrics = out / "run.json", out / "metrics.jsonl"
    if not summary.exists() or not metrics.exists():
        return 0.0
    total = json.loads(summary.read_text()).get("total_steps") or 1
    return min(100.0, 100.0 * len(metrics.read_text().splitlines()) / total)
