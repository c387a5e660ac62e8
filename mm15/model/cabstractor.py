"""C-Abstractor (Honeybee), the connector of MM1/MM1.5 (docs/RECIPE.md section 1).

Patch tokens (CLS dropped) + a learned positional embedding -> a square grid -> a RegNet-style
stage of bottleneck blocks -> adaptive average pooling to sqrt(Q) x sqrt(Q) -> a second stage ->
a 2-layer MLP (SiLU) into the LM width. Convolutions keep locality, pooling sets the token count.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class ConvNorm(nn.Sequential):
    """Conv (no bias) -> LayerNorm2d -> optional SiLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, groups: int = 1, act: bool = True):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, groups=groups, bias=False),
            LayerNorm2d(out_channels),
            nn.SiLU() if act else nn.Identity(),
        )


class SqueezeExcite(nn.Module):
    """Channel gating from globally pooled features."""

    def __init__(self, channels: int, reduced: int):
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced, 1)
        self.expand = nn.Conv2d(reduced, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.expand(F.silu(self.reduce(x.mean((2, 3), keepdim=True))))
        return x * gate.sigmoid()


class Bottleneck(nn.Module):
    """RegNet bottleneck: 1x1 conv, 3x3 depthwise conv, squeeze-excite, 1x1 conv, residual, SiLU."""

    def __init__(self, in_channels: int, out_channels: int, se_ratio: float = 0.25):
        super().__init__()
        self.conv1 = ConvNorm(in_channels, out_channels, 1)
        self.conv2 = ConvNorm(out_channels, out_channels, 3, groups=out_channels)
        self.se = SqueezeExcite(out_channels, max(1, round(in_channels * se_ratio)))
        self.conv3 = ConvNorm(out_channels, out_channels, 1, act=False)
        self.shortcut = (
            ConvNorm(in_channels, out_channels, 1, act=False) if in_channels != out_channels else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.shortcut is None else self.shortcut(x)
        return F.silu(self.conv3(self.se(self.conv2(self.conv1(x)))) + residual)


def regnet_stage(in_channels: int, out_channels: int, depth: int) -> nn.Sequential:
    """`depth` bottleneck blocks, the first one changing the width."""
    return nn.Sequential(
        *(Bottleneck(in_channels if i == 0 else out_channels, out_channels) for i in range(depth))
    )


class CAbstractor(nn.Module):
    """Vision patch tokens (B, N, vision_dim) -> Q tokens (B, Q, lm_dim); Q must be a square."""

    def __init__(
        self,
        vision_dim: int,
        lm_dim: int,
        num_patches: int,
        num_queries: int,
        depth: int = 3,
        width: int = 1024,
    ):
        super().__init__()
        if depth < 1:
            raise ValueError(f"stage depth must be >= 1, got {depth}")
        self.grid = math.isqrt(num_patches)
        self.pooled = math.isqrt(num_queries)
        if self.grid**2 != num_patches:
            raise ValueError(f"patch tokens must form a square grid, got {num_patches}")
        if self.pooled**2 != num_queries or self.pooled > self.grid:
            raise ValueError(f"tokens per tile must be a square <= {num_patches}, got {num_queries}")
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches, vision_dim))
        self.stage1 = regnet_stage(vision_dim, width, depth)
        self.pool = nn.AdaptiveAvgPool2d(self.pooled)
        self.stage2 = regnet_stage(width, width, depth)
        self.readout = nn.Sequential(nn.Linear(width, lm_dim), nn.SiLU(), nn.Linear(lm_dim, lm_dim))

    @property
    def num_queries(self) -> int:
        return self.pooled**2

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        b, n, d = patches.shape
        x = (patches + self.pos_embed).transpose(1, 2).reshape(b, d, self.grid, self.grid)
        x = self.stage2(self.pool(self.stage1(x)))
        return self.readout(x.flatten(2).transpose(1, 2))
