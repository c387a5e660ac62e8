"""Optimizers and the learning-rate schedule: linear warm-up, then cosine decay to 0."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from mm15.train.adafactor import ShardedAdafactor
from mm15.train.config import StageConfig


def build_optimizer(
    stage: StageConfig, params: Iterable[torch.nn.Parameter], sharded: bool
) -> torch.optim.Optimizer:
    """The stage's optimizer at its peak LR (AdaFactor is the shard-aware one under FSDP2)."""
    params = [p for p in params if p.requires_grad]
    if stage.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=stage.peak_lr, weight_decay=stage.weight_decay)
    if sharded:
        return ShardedAdafactor(params, lr=stage.peak_lr, weight_decay=stage.weight_decay)
    return torch.optim.Adafactor(params, lr=stage.peak_lr, weight_decay=stage.weight_decay)


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Multiplier of the peak LR for optimizer step `step` (0-based) of `total`."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def build_scheduler(
    optimizer: torch.optim.Optimizer, warmup: int, total: int
) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, warmup, total))
