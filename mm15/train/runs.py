"""Where a stage's run lives and how it is launched: MM15_HOME/runs/<stage>-<preset>-<key>, the key a hash
of everything that decides the result (the stage file, the manifest, the starting weights, the settings),
so the same inputs find the same folder (and its checkpoints) again."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from mm15 import paths
from mm15.mixture.manifest import read_lineage
from mm15.mixture.store import latest_manifest
from mm15.train.config import load_stage


def run_folder(
    home: Path,
    stage: str,
    preset: str,
    init: str | None = None,
    mixture: str | None = None,
    max_steps: int | None = None,
    processes: int = 1,
    overrides: dict | None = None,
) -> Path:
    """The folder of the run these inputs make."""
    config = load_stage(stage, preset).with_overrides(**(overrides or {}))
    manifest = latest_manifest(paths.manifests_dir(home), mixture or config.mixture)
    inputs = {
        "stage": config.model_dump(),
        "manifest_hash": read_lineage(manifest)["manifest_hash"],
        "init": _weights_digest(Path(init)) if init else None,
        "max_steps": max_steps,
        "processes": processes,
    }
    key = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:12]
    return Path(home) / "runs" / f"{stage}-{preset}-{key}"


def _weights_digest(checkpoint: Path) -> str:
    weights = sorted(checkpoint.glob("*.safetensors"))
    digest = hashlib.sha256()
    for path in weights:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest() if weights else str(checkpoint.resolve())


def trainer_command(
    stage: str,
    preset: str,
    out: Path,
    init: str | None = None,
    mixture: str | None = None,
    max_steps: int | None = None,
    processes: int = 1,
    heldout: int = 0,
    overrides: dict | None = None,
) -> list[str]:
    """`mm15 train ... --resume` for one process, or under torchrun for several."""
    args = [
        "mm15.cli",
        "train",
        "--stage",
        stage,
        "--preset",
        preset,
        "--out",
        str(out),
        "--resume",
        "--heldout",
        str(heldout),
    ]
    for flag, value in (("--init", init), ("--mixture", mixture), ("--max-steps", max_steps)):
        if value is not None:
            args += [flag, str(value)]
    for field, value in (overrides or {}).items():
        args += ["--set", f"{field}={json.dumps(value)}"]
    if processes > 1:
        return [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            str(processes),
            "-m",
            *args,
        ]
    return [sys.executable, "-m", *args]
