"""Per-step training metrics: `metrics.jsonl`, FLOPs and MFU, peak memory, and the loss curve."""

from __future__ import annotations

import json
import os
import resource
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

# dense bf16 peak of common GPUs, TFLOP/s (MM15_PEAK_TFLOPS overrides)
PEAK_TFLOPS = {
    "H100": 989.0,
    "H200": 989.0,
    "H800": 989.0,
    "A100": 312.0,
    "A800": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
    "A10": 125.0,
    "4090": 165.0,
}


class MetricsLog:
    """`metrics.jsonl`: one JSON object per optimizer step. On resume the lines after the checkpoint's
    step are dropped first, so the file always reads as one run."""

    def __init__(self, path: Path, resume_step: int | None):
        self.path = Path(path)
        if resume_step is None:
            self.path.write_text("")
        elif self.path.exists():
            kept = [
                line
                for line in self.path.read_text().splitlines()
                if line and json.loads(line)["step"] <= resume_step
            ]
            self.path.write_text("".join(f"{line}\n" for line in kept))

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")


def read_metrics(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line]


def peak_memory_mb(device: torch.device) -> float:
    """Peak allocated GPU memory, or on CPU the peak resident memory of this process."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def peak_flops(device: torch.device) -> float | None:
    """The device's dense bf16 peak in FLOP/s (None on CPUs and unknown GPUs)."""
    if os.environ.get("MM15_PEAK_TFLOPS"):
        return float(os.environ["MM15_PEAK_TFLOPS"]) * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((tf * 1e12 for key, tf in PEAK_TFLOPS.items() if key in name), None)


@dataclass(frozen=True)
class FlopCounter:
    """Training FLOPs (forward + backward = 3x forward) of the model's matmuls and attention:
    decoder per token (padding included, it is computed), ViT and connector per view."""

    lm_params: int
    lm_layers: int
    lm_hidden: int
    vit_params: int
    vit_layers: int
    vit_hidden: int
    patches: int
    connector_params: int

    @classmethod
    def of(cls, model: nn.Module) -> FlopCounter:
        lm, text, vision = model.language_model, model.config.text_config, model.config.vision_config
        embed = lm.get_input_embeddings().weight.numel()
        return cls(
            lm_params=sum(p.numel() for p in lm.parameters()) - embed,  # the head's matmul stays counted
            lm_layers=text.num_hidden_layers,
            lm_hidden=text.hidden_size,
            vit_params=sum(p.numel() for p in model.vision_tower.parameters()),
            vit_layers=vision.num_hidden_layers,
            vit_hidden=vision.hidden_size,
            patches=(vision.image_size // vision.patch_size) ** 2,
            connector_params=sum(p.numel() for p in model.connector.parameters()),
        )

    def step_flops(self, tokens: int, segment_lengths_squared: int, views: int) -> float:
        lm = 6 * self.lm_params * tokens + 6 * self.lm_layers * self.lm_hidden * segment_lengths_squared
        vit = 6 * (self.vit_params + self.connector_params) * self.patches * views
        vit += 12 * self.vit_layers * self.vit_hidden * self.patches**2 * views
        return float(lm + vit)


def segment_lengths_squared(position_ids: torch.Tensor) -> int:
    """Sum over the packed samples (and padding tails) of their length squared: causal attention's cost."""
    segment = (position_ids == 0).cumsum(1) + torch.arange(len(position_ids))[:, None] * (
        position_ids.shape[1] + 1
    )
    counts = torch.unique_consecutive(segment.flatten(), return_counts=True)[1]
    return int((counts.long() ** 2).sum())


def plot_loss(metrics: list[dict[str, Any]], out: Path, title: str) -> Path | None:
    """The loss (and learning rate) over steps as a PNG."""
    if not metrics:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [m["step"] for m in metrics]
    fig, loss_axis = plt.subplots(figsize=(7, 3.5), dpi=110)
    loss_axis.plot(steps, [m["loss"] for m in metrics], color="tab:blue", linewidth=1)
    loss_axis.set_xlabel("optimizer step")
    loss_axis.set_ylabel("training loss", color="tab:blue")
    lr_axis = loss_axis.twinx()
    lr_axis.plot(steps, [m["lr"] for m in metrics], color="tab:gray", linewidth=0.8, alpha=0.6)
    lr_axis.set_ylabel("learning rate", color="tab:gray")
    loss_axis.set_title(title)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out
