"""No trainer is left behind when a training task ends early. (The training flows themselves run inside the
pipeline: tests/flows/test_pipeline_runs.py and test_pipeline.py.)"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tasks.train import kill_trainer


def test_kill_trainer_takes_the_whole_process_group(tmp_path):
    process = subprocess.Popen(["sh", "-c", "sleep 60 & sleep 60"], start_new_session=True)
    (tmp_path / "trainer.pid").write_text(str(process.pid))
    kill_trainer(tmp_path)
    assert process.wait(timeout=10) != 0
    # The orphaned children may linger as zombies until init reaps them: none may still run.
    deadline = time.monotonic() + 10
    while (running := _running_in_group(process.pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert running == []


def _running_in_group(pgid: int) -> list[int]:
    """Processes of group `pgid` that are alive (not zombies)."""
    group = subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True, text=True)
    running = []
    for pid in map(int, group.stdout.split()):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            continue
        if state not in ("Z", "X"):
            running.append(pid)
    return running
