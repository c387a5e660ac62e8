"""Background services (mm15/services.py) with a dummy service, `python -m http.server`; no Prefect."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest

from mm15 import services
from mm15.errors import UserError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_server(port: int) -> list[str]:
    return [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]


@pytest.fixture
def folder(tmp_path):
    """A services folder; whatever a test left running in it is stopped after."""
    folder = tmp_path / "services"
    yield folder
    for record in services.records(folder):
        services.stop(folder, record.name, grace=2)


@pytest.fixture
def web(folder):
    """A started dummy service, healthy: (its record, its URL)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    record, started = services.start(folder, "web", http_server(port), port=port, url=url)
    assert started
    services.wait_healthy(url, timeout=15, record=record)
    return record, url


def test_start_runs_the_command_in_the_background_with_a_record_and_a_log(folder, web):
    record, url = web
    saved = json.loads((folder / "web.json").read_text())
    assert saved["pid"] == record.pid and saved["command"] == record.command and saved["port"] == record.port
    assert services.cmdline(record.pid) == record.command
    assert services.group_members(record.pid) == [record.pid]  # its own process group
    assert record.log == str(folder / "web.log") and "http.server" in (folder / "web.log").read_text()
    assert services.healthy(url)


def test_a_second_start_while_it_runs_is_a_no_op(folder, web):
    record, _ = web
    again, started = services.start(folder, "web", record.command, port=record.port)
    assert not started and again == record  # no port check either: the port is its own


def test_a_stale_record_is_replaced(folder, web):
    record, _ = web
    services.stop(folder, "web", grace=2)
    dead = services.Record("web", record.pid, record.command, record.log, record.port)
    (folder / "web.json").write_text(json.dumps(dead.__dict__))  # the record of a process now gone
    assert services.running(folder, "web") is None
    port = free_port()
    new, started = services.start(folder, "web", http_server(port), port=port)
    assert started and new.pid != record.pid
    services.wait_healthy(f"http://127.0.0.1:{port}/", timeout=15, record=new)


def test_a_live_pid_running_another_command_is_not_ours(folder):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        port = free_port()
        reused = services.Record("web", other.pid, http_server(port), str(folder / "web.log"), port)
        folder.mkdir()
        (folder / "web.json").write_text(json.dumps(reused.__dict__))  # its pid, another command
        assert not services.is_ours(reused) and services.running(folder, "web") is None
        record, started = services.start(folder, "web", http_server(port), port=port)
        assert started and record.pid != other.pid
        assert other.poll() is None  # not signalled
        assert services.stop(folder, "web", grace=2).pid == record.pid
    finally:
        other.kill()
        other.wait()


def test_stop_kills_the_whole_group_and_removes_the_record(folder):
    # A leader that starts a child of its own (as mlflow starts uvicorn), which ignores SIGTERM.
    script = (
        "import subprocess, sys, time;"
        "subprocess.Popen([sys.executable, '-c', "
        "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)']);"
        "time.sleep(60)"
    )
    record, _ = services.start(folder, "group", [sys.executable, "-c", script])
    deadline = time.monotonic() + 10
    while len(services.group_members(record.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    members = services.group_members(record.pid)
    assert len(members) == 2
    time.sleep(0.3)  # the child has set its handler
    started = time.monotonic()
    assert services.stop(folder, "group", grace=1).pid == record.pid
    assert time.monotonic() - started < 5  # SIGKILL after the grace period
    assert services.group_members(record.pid) == []
    assert not (folder / "group.json").exists()


def test_stop_ends_what_the_service_started_in_a_session_of_its_own_first(folder, tmp_path):
    # A leader that starts a child in a new session (as a Prefect worker starts a flow run), which
    # notes the SIGTERM it gets while the leader still runs.
    log = tmp_path / "child.txt"
    child = (
        "import os, signal, sys, time;"
        f"signal.signal(signal.SIGTERM, lambda *_: (open({str(log)!r}, 'w').write(str(os.getppid())), sys.exit(0)));"
        f"open({str(log)!r}, 'w').write('ready');"
        "time.sleep(60)"
    )
    script = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {child!r}], start_new_session=True); time.sleep(60)"
    record, _ = services.start(folder, "worker", [sys.executable, "-c", script])
    deadline = time.monotonic() + 10
    while not (log.exists() and log.read_text() == "ready") and time.monotonic() < deadline:
        time.sleep(0.05)
    [detached] = services.detached_children(record.pid)
    assert services.group_members(record.pid) == [record.pid]  # out of the group's reach
    services.stop(folder, "worker", grace=5)
    assert log.read_text() == str(record.pid)  # signalled while its parent still ran
    assert services.cmdline(detached) is None and services.group_members(record.pid) == []


def test_stop_leaves_unrecorded_processes_alone(folder, web):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        assert services.stop(folder, "nothing") is None
        record, _ = web
        services.stop(folder, "web", grace=2)
        assert other.poll() is None
        assert services.cmdline(record.pid) is None
    finally:
        other.kill()
        other.wait()


def test_a_port_in_use_is_a_clear_error_before_anything_starts(folder):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UserError, match=f"port {port} on 127.0.0.1 is already in use"):
            services.start(folder, "web", http_server(port), port=port)
    assert not (folder / "web.json").exists()


def test_waiting_names_the_log_when_the_service_dies_or_never_answers(folder):
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    record, _ = services.start(folder, "dies", [sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(UserError, match=r"dies exited while starting .* see .*dies\.log"):
        services.wait_healthy(url, timeout=15, record=record)
    record, _ = services.start(folder, "mute", [sys.executable, "-c", "import time; time.sleep(60)"])
    with pytest.raises(UserError, match=r"mute did not answer on .* within 1 s: see .*mute\.log"):
        services.wait_healthy(url, timeout=1, record=record)


def test_down_with_nothing_running_says_so(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from mm15.cli import app

    monkeypatch.setenv("MM15_HOME", str(tmp_path))
    result = CliRunner().invoke(app, ["down"])
    assert result.exit_code == 0, result.output
    assert "nothing running" in result.output
