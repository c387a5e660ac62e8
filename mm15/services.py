"""Local services in the background: start a command in a session (process group) of its own, with its
log in FOLDER/NAME.log and a record (pid, command, port) in FOLDER/NAME.json; tell whether it still runs
and is ours; wait for its health URL; stop its whole process group.

A record names a process by pid *and* command: a pid whose live command line differs (pids get reused)
is not ours and is never signalled. Nothing here imports Prefect or MLflow: callers run their
executables (`executable("prefect")`, the one beside this Python) as subprocesses.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mm15 import paths
from mm15.atomic import write_text_atomic
from mm15.errors import UserError


@dataclass(frozen=True)
class Record:
    """A service `start` launched: its process (and group) id, the command it runs, where it logs."""

    name: str
    pid: int
    command: list[str]
    log: str
    port: int | None = None
    url: str | None = None  # where it answers (its API or UI), for callers and display
    settings: dict[str, str] = field(default_factory=dict)  # what else defines it (callers compare these)
    started: float = field(default_factory=time.time)


def services_dir(root: Path | None = None) -> Path:
    """Where records and logs live: MM15_HOME/services."""
    return (root or paths.home()) / "services"


def executable(name: str) -> Path:
    """A console script of this Python environment (`prefect`, `mlflow`), beside sys.executable."""
    return Path(sys.executable).with_name(name)


def record_path(folder: Path, name: str) -> Path:
    return folder / f"{name}.json"


def log_path(folder: Path, name: str) -> Path:
    return folder / f"{name}.log"


def read_record(folder: Path, name: str) -> Record | None:
    """The record of NAME, or None when there is none (or it is unreadable: then it is as good as none)."""
    try:
        data = json.loads(record_path(folder, name).read_text())
        return Record(**data)
    except (OSError, ValueError, TypeError):
        return None


def records(folder: Path) -> list[Record]:
    """Every readable record in FOLDER, by name."""
    found = (read_record(folder, p.stem) for p in sorted(folder.glob("*.json")))
    return [r for r in found if r is not None]


def cmdline(pid: int) -> list[str] | None:
    """The live command line of process PID; None when it does not exist or is a zombie."""
    for _ in range(50):
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        if raw:
            return raw.decode(errors="replace").split("\0")[:-1]
        # Empty: a zombie, or a process in the middle of exec (its new arguments are not mapped yet;
        # Popen returns in that window).
        if _state(pid) in (None, "Z"):
            return None
        time.sleep(0.01)
    return None


def is_ours(record: Record) -> bool:
    """Whether the recorded process runs, with the recorded command (a launcher such as a script's
    interpreter may come before it)."""
    live = cmdline(record.pid)
    n = len(record.command)
    return live is not None and n > 0 and live[-n:] == record.command


def running(folder: Path, name: str) -> Record | None:
    """NAME's record if its process runs and is ours, else None."""
    record = read_record(folder, name)
    return record if record is not None and is_ours(record) else None


def _state(pid: int) -> str | None:
    """The state letter of PID (R, S, Z, ...), None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()[0]


def _processes() -> dict[int, tuple[int, int]]:
    """Live (not zombie) processes: pid -> (parent pid, process group id)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": state, ppid, pgrp, ...
        if fields[0] != "Z":
            table[int(entry.name)] = (int(fields[1]), int(fields[2]))
    return table


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes in process group PGID."""
    return sorted(pid for pid, (_, group) in _processes().items() if group == pgid)


def detached_children(pgid: int) -> list[int]:
    """Processes that members of group PGID started in groups of their own (a Prefect worker's flow
    runs), outside the group's reach: the leaders of those groups."""
    table = _processes()
    members = {pid for pid, (_, group) in table.items() if group == pgid}
    return sorted(pid for pid, (parent, group) in table.items() if parent in members and group != pgid)


def port_in_use(host: str, port: int) -> bool:
    """Whether something already listens on HOST:PORT (so a server could not bind it)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is no obstacle
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def start(
    folder: Path,
    name: str,
    command: list[str],
    *,
    port: int | None = None,
    host: str = "127.0.0.1",
    url: str | None = None,
    settings: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> tuple[Record, bool]:
    """Start COMMAND in the background as service NAME, unless it already runs: (its record, started?).

    A stale record (its process gone, or its pid now another program's) is replaced; leftovers of a
    dead service's process group are stopped first. A PORT held by anything else is a UserError,
    checked before anything starts."""
    if (current := running(folder, name)) is not None:
        return current, False
    stop(folder, name)  # a stale record: stop what is left of its group, drop the record
    if port is not None and port_in_use(host, port):
        raise UserError(f"cannot start {name}: port {port} on {host} is already in use by another program")
    folder.mkdir(parents=True, exist_ok=True)
    log = log_path(folder, name)
    with log.open("ab") as out:
        out.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(command)}\n".encode())
        out.flush()
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own session and process group: `stop` signals all of it
            env=env,
            cwd=cwd,
        )
    record = Record(name, process.pid, command, str(log), port, url, dict(settings or {}))
    write_text_atomic(record_path(folder, name), json.dumps(asdict(record), indent=2) + "\n")
    return record, True


def healthy(url: str, timeout: float = 2.0) -> bool:
    """Whether URL answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError, ValueError):
        return False


def wait_healthy(url: str, *, timeout: float, record: Record | None = None, what: str | None = None) -> float:
    """Wait until URL answers 200; the seconds it took. A UserError (naming the log) when the process
    of RECORD exits first, or when TIMEOUT seconds pass."""
    started = time.monotonic()
    what = what or (record.name if record else url)
    where = f": see {record.log}" if record else ""
    while True:
        if healthy(url):
            return time.monotonic() - started
        if record is not None and not is_ours(record):
            raise UserError(f"{what} exited while starting (no answer on {url}){where}")
        if time.monotonic() - started > timeout:
            raise UserError(f"{what} did not answer on {url} within {timeout:.0f} s{where}")
        time.sleep(0.25)


def stop(folder: Path, name: str, *, grace: float = 15.0) -> Record | None:
    """Stop the service NAME that `start` recorded and remove its record: SIGTERM to the processes it
    started in groups of their own, then to its process group; SIGKILL to what is left after GRACE
    seconds each. Returns the record when something of it was running.

    A recorded pid that now belongs to another program is left alone; so is everything `start` did
    not record."""
    record = read_record(folder, name)
    if record is None:
        record_path(folder, name).unlink(missing_ok=True)
        return None
    if is_ours(record) or (cmdline(record.pid) is None and group_members(record.pid)):
        # Ours, or the leftovers of our group after its leader died (a live group keeps its id unused).
        # What it started in groups of their own goes first, while it still runs to see them end.
        detached = detached_children(record.pid)
        for pid in detached:
            _signal(pid, signal.SIGTERM)
        _wait_gone(record.pid, lambda: set(detached) & set(_processes()), grace)
        _signal_group(record.pid, signal.SIGTERM)
        _wait_gone(record.pid, lambda: group_members(record.pid), grace)
        left = [g for g in [record.pid, *detached] if group_members(g)]
        for group in left:
            _signal_group(group, signal.SIGKILL)
        if left:
            _wait_gone(record.pid, lambda: [g for g in left if group_members(g)], 5)
        stopped = record
    else:
        stopped = None
    record_path(folder, name).unlink(missing_ok=True)
    return stopped


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _wait_gone(leader: int, alive: Callable[[], object], timeout: float) -> bool:
    """Wait until `alive()` is empty, reaping LEADER if it is our child; whether some are still alive."""
    deadline = time.monotonic() + timeout
    while (left := alive()) and time.monotonic() < deadline:
        _reap(leader)
        time.sleep(0.1)
    _reap(leader)
    return bool(left)


def _reap(pid: int) -> None:
    """Collect PID's exit status when it is our own child (a test, or `up` stopping a failed start)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
