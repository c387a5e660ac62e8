"""Two gloo processes under torchrun give the single process's losses at the same global batch:
DDP (with text-only batches, where the vision tower would otherwise get no gradient) and FSDP2 with
the shard-aware AdaFactor."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mm15.catalog import open_catalog
from mm15.mixture.build import build_manifest
from mm15.mixture.spec import spec_from_dict
from mm15.train.metrics import read_metrics

pytestmark = pytest.mark.slow
STEPS = 4


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(home: Path, out: Path, processes: int, *extra: str) -> list[float]:
    args = ["mm15.cli", "train", "--stage", "sft", "--preset", "tiny", "--max-steps", str(STEPS)]
    args += ["--no-track", "--out", str(out), "--set", "workers=0", *extra]
    command = [sys.executable, "-m", *args]
    if processes > 1:
        launcher = [
            "--nproc_per_node",
            str(processes),
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(_port()),
        ]
        command = [sys.executable, "-m", "torch.distributed.run", *launcher, "-m", *args]
    env = {**os.environ, "MM15_HOME": str(home), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return [m["loss"] for m in read_metrics(out / "metrics.jsonl")]


@pytest.fixture(scope="module")
def text_only_manifest(train_home) -> Path:
    spec = spec_from_dict(
        {"name": "text_only", "batch_size": 8, "groups": {"t": {"alpha": {"text_only": 1.0}}}}
    )
    out = train_home / "manifests" / "text_only" / "text_only.parquet"
    with open_catalog(train_home / "catalog") as catalog:
        build_manifest(catalog.con, spec, samples=64, seed=0, snapshot=catalog.snapshot_id(), out=out)
    return out


def test_ddp_on_text_only_batches_matches_one_process(train_home, text_only_manifest, tmp_path):
    # one process: 2 rows per micro-batch; two processes: 1 row each, so both read the same rows per step
    manifest = ["--manifest", str(text_only_manifest), "--set", "global_batch=16"]
    single = _train(train_home, tmp_path / "one", 1, *manifest, "--set", "micro_batch=2")
    double = _train(train_home, tmp_path / "two", 2, *manifest, "--set", "micro_batch=1")
    assert len(single) == len(double) == STEPS
    assert double == pytest.approx(single, rel=1e-4)
    one, two = (json.loads((tmp_path / name / "run.json").read_text()) for name in ("one", "two"))
    assert (two["world_size"], two["strategy"]) == (2, "ddp")
    assert (two["rows_per_step"], two["accumulation"]) == (one["rows_per_step"], one["accumulation"])


def test_fsdp2_with_adafactor_matches_one_process(train_home, tmp_path):
    settings = ["--set", "optimizer=adafactor", "--set", "peak_lr=0.01", "--set", "global_batch=16"]
    single = _train(train_home, tmp_path / "one", 1, *settings, "--set", "micro_batch=2")
    sharded = _train(
        train_home, tmp_path / "fsdp", 2, *settings, "--set", "micro_batch=1", "--strategy", "fsdp"
    )
    assert sharded == pytest.approx(single, rel=1e-4)
    assert json.loads((tmp_path / "fsdp" / "run.json").read_text())["strategy"] == "fsdp"
    assert (tmp_path / "fsdp" / f"checkpoint-{STEPS}" / "model.safetensors").is_file()
