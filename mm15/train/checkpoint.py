"""Checkpoints: `checkpoint-<step>/` folders, each a `save_pretrained` model and processor plus the
training state (optimizer, scheduler, RNG states, data position) from which training resumes exactly.

A checkpoint is written into a hidden temporary folder and renamed into place, so a folder named
`checkpoint-<step>` is always complete, whatever killed the writer. The training state is loaded with
`weights_only=True`: tensors and plain containers only, nothing is unpickled.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mm15.model.presets import ModelPreset, build_model, build_processor
from mm15.train.config import StageConfig

STATE_FILE = "training_state.pt"
PATTERN = re.compile(r"^checkpoint-(\d+)$")


def checkpoints(out: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints under `out`, oldest first."""
    found = []
    for child in Path(out).glob("checkpoint-*"):
        match = PATTERN.match(child.name)
        if match and (child / STATE_FILE).is_file():
            found.append((int(match.group(1)), child))
    return sorted(found)


def latest_checkpoint(out: Path) -> Path | None:
    found = checkpoints(out)
    return found[-1][1] if found else None


def rng_state() -> dict[str, Any]:
    state = {
        "torch": torch.get_rng_state(),
        "python": _lists(random.getstate()),
        "numpy": [
            np.random.get_state()[0],
            torch.from_numpy(np.random.get_state()[1].copy()),
            *np.random.get_state()[2:],
        ],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy(), *rest))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _lists(value: Any) -> Any:
    return [_lists(v) for v in value] if isinstance(value, tuple | list) else value


def training_state(
    step: int, total_steps: int, optimizer_state: dict, scheduler: Any, rows_per_step: int, manifest_hash: str
) -> dict[str, Any]:
    """What a checkpoint holds besides the weights: enough to repeat the rest of the run exactly."""
    return {
        "step": step,
        "total_steps": total_steps,
        "optimizer": optimizer_state,
        "scheduler": scheduler.state_dict(),
        "rng": rng_state(),
        "data": {
            "rows_consumed": step * rows_per_step,
            "rows_per_step": rows_per_step,
            "manifest_hash": manifest_hash,
        },
    }


def save_checkpoint(
    out: Path,
    step: int,
    model: Any,
    processor: Any,
    state: dict[str, Any],
    keep: int,
    model_state: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write `checkpoint-<step>` atomically, then remove all but the newest `keep` checkpoints."""
    out = Path(out)
    final = out / f"checkpoint-{step}"
    tmp = out / f".checkpoint-{step}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, state_dict=model_state)
    processor.save_pretrained(tmp)
    torch.save(state, tmp / STATE_FILE)
    for path in tmp.iterdir():
        with open(path, "rb") as f:
            os.fsync(f.fileno())
    if final.exists():  # a rerun after a resume: the same step again
        old = out / f".checkpoint-{step}.old-{os.getpid()}"
        final.rename(old)
        shutil.rmtree(old)
    tmp.rename(final)
    for _, stale in checkpoints(out)[:-keep]:
        shutil.rmtree(stale, ignore_errors=True)
    return final


def load_training_state(checkpoint: Path) -> dict[str, Any]:
    return torch.load(Path(checkpoint) / STATE_FILE, weights_only=True)


def remove_partial(out: Path) -> None:
    """Temporary folders left by a writer that was killed mid-checkpoint."""
    for stale in Path(out).glob(".checkpoint-*"):
        shutil.rmtree(stale, ignore_errors=True)


def load_for_training(preset: ModelPreset, stage: StageConfig, source: Path | None) -> tuple[Any, Any]:
    """(processor, model) for a stage: from a checkpoint folder (resume, or `--init`), else the preset's
    fresh weights (seeded by the stage). The stage decides how images are split and, where it sets them,
    the tile indicators and the overview's position (kept in the processor, so checkpoints save them);
    freezing and gradient checkpointing are applied here."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    import mm15.model  # noqa: F401  (registers the Auto classes)

    if source:
        processor = AutoProcessor.from_pretrained(source)
        model = AutoModelForImageTextToText.from_pretrained(source, dtype=torch.float32)
    else:
        processor = build_processor(preset)
        torch.manual_seed(stage.seed)
        model = build_model(preset, processor)
    image_processor = processor.image_processor
    image_processor.split_mode = stage.split
    if stage.split == "static":
        image_processor.static_grid = list(preset.static_grid)
    if stage.tile_indicators is not None:
        processor.tile_indicators = stage.tile_indicators
    if stage.overview is not None:
        image_processor.overview = stage.overview
    for part in stage.freeze:
        getattr(model, part).requires_grad_(False)
    if stage.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    return processor, model
