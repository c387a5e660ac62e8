"""The language-model loss over supervised positions only, averaged per token or per sample.

Labels equal to IGNORE_INDEX (prompts, image tokens, padding) carry no loss; the processor writes
them and the model reads them, so both take the value from here.
"""

from __future__ import annotations

import torch

IGNORE_INDEX = -100


def supervised_positions(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(rows, cols, targets) of next-token predictions that carry a label."""
    shifted = labels[:, 1:]
    rows, cols = (shifted != IGNORE_INDEX).nonzero(as_tuple=True)
    return rows, cols, shifted[rows, cols]


def reduce_token_losses(
    losses: torch.Tensor, rows: torch.Tensor, batch_size: int, reduction: str
) -> torch.Tensor:
    """Mean over all label tokens ("token") or mean of per-sample means ("sample")."""
    if losses.numel() == 0:
        return losses.sum()
    if reduction == "token":
        return losses.mean()
    sums = torch.zeros(batch_size, dtype=losses.dtype, device=losses.device).index_add_(0, rows, losses)
    counts = torch.bincount(rows, minlength=batch_size)
    present = counts > 0
    return (sums[present] / counts[present]).mean()
