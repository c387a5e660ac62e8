"""Where a stage's run lives and how it is launched: MM15_HOME/runs/<stage>-<preset>-<key>, the key a hash
of everything that decides the result (the stage file, the manifest, the starting weights, the settings),
so the same inputs find the same folder (and its checkpoints) again."""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from mm15 import paths
from mm15.mixture.manifest import read_lineage
from mm15.mixture.store import latest_manifest
from mm15.train.config import load_stage


@dataclass(frozen=True)
class StageRun:
    """The inputs of one stage's training run."""

    stage: str
    preset: str
    init: str | None = None
    mixture: str | None = None
    max_steps: int | None = None
    processes: int = 1
    overrides: dict = field(default_factory=dict)
    manifest: str | None = None  # this manifest file instead of the mixture's latest build

    def folder(self, home: Path) -> Path:
        """The folder of the run these inputs make under `home`."""
        config = load_stage(self.stage, self.preset).with_overrides(**self.overrides)
        manifest = (
            Path(self.manifest)
            if self.manifest
            else latest_manifest(paths.manifests_dir(home), self.mixture or config.mixture)
        )
        inputs = {
            "stage": config.model_dump(),
            "manifest_hash": read_lineage(manifest)["manifest_hash"],
            "init": _weights_digest(Path(self.init)) if self.init else None,
            "max_steps": self.max_steps,
            "processes": self.processes,
        }
        key = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:12]
        return Path(home) / "runs" / f"{self.stage}-{self.preset}-{key}"

    def command(self, out: Path, heldout: int = 0) -> list[str]:
        """`mm15 train ... --resume` into `out`, for one process or under torchrun for several."""
        args = [
            "mm15.cli",
            "train",
            "--stage",
            self.stage,
            "--preset",
            self.preset,
            "--out",
            str(out),
            "--resume",
            "--heldout",
            str(heldout),
        ]
        for flag, value in (
            ("--init", self.init),
            ("--mixture", self.mixture),
            ("--manifest", self.manifest),
            ("--max-steps", self.max_steps),
        ):
            if value is not None:
                args += [flag, str(value)]
        for name, value in self.overrides.items():
            args += ["--set", f"{name}={json.dumps(value)}"]
        if self.processes > 1:
            launcher = [
                "-m",
                "torch.distributed.run",
                "--standalone",
                "--nproc_per_node",
                str(self.processes),
            ]
            return [sys.executable, *launcher, "-m", *args]
        return [sys.executable, "-m", *args]


def _weights_digest(checkpoint: Path) -> str:
    weights = sorted(checkpoint.glob("*.safetensors"))
    digest = hashlib.sha256()
    for path in weights:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest() if weights else str(checkpoint.resolve())


def training_chain(checkpoint: Path) -> dict[str, dict]:
    """The summaries (run.json) of the runs that made `checkpoint` (a checkpoint-<step> folder of a run
    folder), by stage, following each run's starting weights back: {"cpt": {...}, "sft": {...}}."""
    chain: dict[str, dict] = {}
    folder: Path | None = Path(checkpoint)
    while folder is not None and (folder.parent / "run.json").is_file():
        summary = json.loads((folder.parent / "run.json").read_text())
        chain.setdefault(summary["stage"], summary)
        folder = Path(summary["init"]) if summary.get("init") else None
    return dict(reversed(chain.items()))
