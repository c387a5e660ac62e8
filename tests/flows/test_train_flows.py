"""The training flows against a real Prefect API: CPT then SFT from its checkpoint, cached reruns, the
`gpu` concurrency limit, the progress artifact, and no trainer left behind when a task ends early."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from flows.continual_pretrain import continual_pretrain
from flows.sft import sft
from tasks.train import kill_trainer

pytestmark = [pytest.mark.flow, pytest.mark.slow]


def test_cpt_then_sft_train_and_rerun_from_cache(prefect_api, train_home, monkeypatch):
    from prefect import get_client

    monkeypatch.setenv("MM15_HOME", str(train_home))
    cpt = continual_pretrain(preset="tiny", max_steps=3, heldout=0, home=str(train_home))
    assert cpt["status"] == "finished" and cpt["step"] == 3
    checkpoint = Path(cpt["last_checkpoint"])
    assert (checkpoint / "model.safetensors").is_file()
    assert checkpoint.parent.parent == train_home / "runs"

    tuned = sft(preset="tiny", init=str(checkpoint), max_steps=2, heldout=0, home=str(train_home))
    assert tuned["status"] == "finished" and tuned["init"] == str(checkpoint)
    assert tuned["stage_config"]["split"] == "dynamic" and cpt["stage_config"]["split"] == "static"

    started = time.monotonic()
    again = continual_pretrain(preset="tiny", max_steps=3, heldout=0, home=str(train_home))
    assert again == cpt  # the same inputs: the finished run is returned, nothing trains
    assert time.monotonic() - started < 30

    with get_client(sync_client=True) as client:
        assert client.read_global_concurrency_limit_by_name("gpu").limit >= 1
        keys = {a.key for a in client.read_artifacts()}
    assert {"train-cpt", "train-sft"} <= keys


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
