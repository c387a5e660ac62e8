"""Packing: samples -> rows of `seq_len` tokens, each sample isolated from the others in its row.

Planning needs only each sample's token count and number of image views (known from the text and
the images' sizes, before any pixel is decoded). Samples are taken in manifest order, a window at a
time, and placed first-fit-decreasing into rows; a row holds at most `max_views` image views. The
plan is a pure function of its inputs, so every rank and every resumed run sees the same rows.

A packed row is isolated per sample by its position ids, which restart at 0 for every sample: the
attention mask built from them is block-diagonal (`transformers.masking_utils`), and the padding
at the end of a row is a segment of its own that carries no label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from mm15.model.loss import IGNORE_INDEX

WINDOW = 512  # samples placed together; larger windows pack tighter but reorder more


@dataclass(frozen=True)
class PackPlan:
    """Rows of manifest positions, and what did not fit anywhere (reported, never dropped silently)."""

    rows: list[list[int]]  # per row, the positions of its samples, in manifest order
    tokens: list[int]  # real tokens per row
    seq_len: int
    too_long: list[int]  # positions of samples longer than seq_len whose cut would split an image

    @property
    def efficiency(self) -> float:
        """Real tokens / row capacity over the whole plan."""
        return sum(self.tokens) / max(1, len(self.rows) * self.seq_len)

    @property
    def samples(self) -> int:
        return sum(len(r) for r in self.rows)


def plan_packs(
    lengths: Sequence[int],
    views: Sequence[int],
    seq_len: int,
    max_views: int,
    fits: Sequence[bool] | None = None,
    window: int = WINDOW,
) -> PackPlan:
    """Place samples (lengths already cut to `seq_len`; `fits[i]` False when a cut is impossible)."""
    rows: list[list[int]] = []
    tokens: list[int] = []
    too_long = [i for i, ok in enumerate(fits or []) if not ok]
    skip = set(too_long)
    for start in range(0, len(lengths), window):
        members = [i for i in range(start, min(start + window, len(lengths))) if i not in skip]
        bins: list[list[int]] = []
        room: list[int] = []
        view_room: list[int] = []
        for i in sorted(members, key=lambda i: (-lengths[i], i)):
            if views[i] > max_views:
                raise ValueError(
                    f"sample at position {i} has {views[i]} views, more than a row holds ({max_views})"
                )
            for b in range(len(bins)):
                if room[b] >= lengths[i] and view_room[b] >= views[i]:
                    break
            else:
                bins.append([])
                room.append(seq_len)
                view_room.append(max_views)
                b = len(bins) - 1
            bins[b].append(i)
            room[b] -= lengths[i]
            view_room[b] -= views[i]
        for b in sorted(range(len(bins)), key=lambda b: min(bins[b])):
            rows.append(sorted(bins[b]))
            tokens.append(seq_len - room[b])
    return PackPlan(rows, tokens, seq_len, too_long)


def pack_row(samples: Sequence[dict], seq_len: int, pad_id: int, first_index: int = 0) -> dict:
    """Encoded samples -> one row: ids, labels, position ids restarting per sample, sample index."""
    ids = torch.full((seq_len,), pad_id, dtype=torch.long)
    labels = torch.full((seq_len,), IGNORE_INDEX, dtype=torch.long)
    positions = torch.zeros(seq_len, dtype=torch.long)
    index = torch.full((seq_len,), first_index + max(len(samples) - 1, 0), dtype=torch.long)
    at = 0
    for k, sample in enumerate(samples):
        n = len(sample["input_ids"])
        if at + n > seq_len:
            raise ValueError(f"samples of {at + n} tokens do not fit a row of {seq_len}")
        ids[at : at + n] = sample["input_ids"]
        labels[at : at + n] = sample["labels"]
        positions[at : at + n] = torch.arange(n)
        index[at : at + n] = first_index + k
        at += n
    positions[at:] = torch.arange(seq_len - at)  # the padding: a segment of its own
    pixels = [s["pixel_values"] for s in samples if len(s["pixel_values"])]
    return {
        "input_ids": ids,
        "labels": labels,
        "position_ids": positions,
        "sample_index": index,
        "pixel_values": torch.cat(pixels) if pixels else None,
        "image_grids": [g for s in samples for g in s["image_grids"]],
        "tokens": at,
        "samples": len(samples),
    }


def collate_rows(rows: Sequence[dict], tile: int) -> dict:
    """Packed rows -> one micro-batch (sample indices numbered across the rows)."""
    offsets = [0]
    for row in rows[:-1]:
        offsets.append(offsets[-1] + row["samples"])
    pixels = [r["pixel_values"] for r in rows if r["pixel_values"] is not None]
    grids = [g for r in rows for g in r["image_grids"]]
    labels = torch.stack([r["labels"] for r in rows])
    return {
        "input_ids": torch.stack([r["input_ids"] for r in rows]),
        "labels": labels,
        "position_ids": torch.stack([r["position_ids"] for r in rows]),
        "sample_index": torch.stack([r["sample_index"] + o for r, o in zip(rows, offsets, strict=True)]),
        "pixel_values": torch.cat(pixels) if pixels else torch.empty(0, 3, tile, tile),
        "image_grids": torch.tensor(grids, dtype=torch.long).view(-1, 2),
        "tokens": sum(r["tokens"] for r in rows),
        "capacity": labels.numel(),
    }


def loss_units(batch: dict, reduction: str) -> int:
    """How many units the model's loss averages over: samples with a label, or label tokens."""
    shifted = batch["labels"][:, 1:] != IGNORE_INDEX
    if reduction == "token":
        return int(shifted.sum())
    return int(batch["sample_index"][:, 1:][shifted].unique().numel())
