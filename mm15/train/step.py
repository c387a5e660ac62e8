"""One optimizer step: micro-batches accumulated, gradients scaled to the step's mean, clipped, applied.

Each micro-batch's loss is its mean over samples (or tokens) times their number, so the accumulated
gradient is a sum over the step's units on every process; dividing by the units of all processes
at the end makes the step the same whether it ran as one process or several.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mm15.train.config import StageConfig
from mm15.train.distributed import World, accumulating, sum_across, unwrap
from mm15.train.metrics import FlopCounter, peak_memory_mb, segment_lengths_squared
from mm15.train.packing import loss_units

MODEL_INPUTS = ("input_ids", "labels", "position_ids", "sample_index", "pixel_values", "image_grids")


@dataclass
class Stepper:
    model: nn.Module  # as wrapped for several processes
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    stage: StageConfig
    world: World
    accumulation: int
    flops: FlopCounter
    peak: float | None  # the device's peak FLOP/s, for MFU (None on CPUs)

    def __call__(self, batches: Iterator[dict[str, Any]], step: int) -> dict[str, Any]:
        """Run optimizer step `step` (0-based) over `accumulation` micro-batches; its metrics."""
        started = time.perf_counter()
        waited = 0.0
        loss_sum = units = tokens = capacity = samples = views = 0.0
        flops = 0.0
        reduction = unwrap(self.model).config.loss_reduction
        device = self.world.device
        for a in range(self.accumulation):
            fetch = time.perf_counter()
            batch = next(batches)
            waited += time.perf_counter() - fetch
            n = loss_units(batch, reduction)
            inputs = {k: batch[k].to(device, non_blocking=True) for k in MODEL_INPUTS}
            with (
                accumulating(self.model, sync=a == self.accumulation - 1),
                torch.autocast(
                    device.type, dtype=torch.bfloat16, enabled=device.type == "cuda" and self.stage.bf16
                ),
            ):
                loss = self.model(**inputs, use_cache=False).loss * n
                loss.backward()
            loss_sum += float(loss.detach())
            units += n
            tokens += batch["tokens"]
            capacity += batch["capacity"]
            samples += batch["samples"]
            views += len(batch["pixel_values"])
            flops += self.flops.step_flops(
                batch["capacity"], segment_lengths_squared(batch["position_ids"]), len(batch["pixel_values"])
            )
        loss_sum, units, tokens, capacity, samples, views, flops = sum_across(
            [loss_sum, units, tokens, capacity, samples, views, flops], self.world
        )
        # gradients hold the sum over this process's units (averaged over processes by DDP / FSDP):
        # scale them to the mean over the whole step's units
        scale = self.world.world_size / max(units, 1.0)
        for p in self.model.parameters():
            if p.grad is not None:
                p.grad.mul_(scale)
        clip = self.stage.grad_clip or float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        if hasattr(grad_norm, "full_tensor"):
            grad_norm = grad_norm.full_tensor()
        lr = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - started
        return {
            "step": step + 1,
            "loss": loss_sum / max(units, 1.0),
            "lr": lr,
            "grad_norm": float(grad_norm),
            "samples": int(samples),
            "tokens_per_s": tokens / seconds,
            "tiles_per_s": views / seconds,
            "data_wait": waited / seconds,
            "packing_efficiency": tokens / max(capacity, 1.0),
            "peak_memory_mb": peak_memory_mb(device),
            "mfu": flops / seconds / (self.peak * self.world.world_size) if self.peak else None,
            "seconds": seconds,
        }
