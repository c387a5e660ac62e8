"""Drawing rows inside a component: how a category's draws split over its sources, and which rows.

Each (category, source) has its own endless stream of draws: epochs, each a fresh permutation of
the source's rows, from a generator seeded by (seed, category, source). A build takes a prefix of
the stream, so a source is sampled without replacement until exhausted, then epoch by epoch (the
epoch is the manifest's `repeat`), and a variant that draws more from a source includes all the rows
of one that draws fewer: ablation mixtures differ only where their proportions do.
"""

from __future__ import annotations

import hashlib

import numpy as np


def seeded_rng(seed: int, *labels: str) -> np.random.Generator:
    """A generator seeded by a stable hash of (seed, labels): independent streams per label."""
    digest = hashlib.sha256("\0".join([str(seed), *labels]).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def source_weights(sizes: np.ndarray, within_category: str, temperature: float | None = None) -> np.ndarray:
    """Weights of a category's sources: ~size (proportional), equal (uniform) or ~size^(1/T)."""
    sizes = np.asarray(sizes, dtype=np.float64)
    if within_category == "proportional":
        return sizes
    if within_category == "uniform":
        return np.ones_like(sizes)
    if within_category == "temperature" and temperature:
        return sizes ** (1.0 / temperature)
    raise ValueError(f"unknown within_category {within_category!r}")


def draw_rows(rng: np.random.Generator, available: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `count` draws of the stream over `available` rows: (row indices, epoch of each)."""
    if count == 0:
        return np.empty(0, np.int64), np.empty(0, np.int32)
    epochs = -(-count // available)
    rows = np.tile(np.arange(available, dtype=np.int64), (epochs, 1))
    rows = rng.permuted(rows, axis=1).ravel()[:count]  # row e is epoch e's permutation, in stream order
    return rows, (np.arange(count, dtype=np.int64) // available).astype(np.int32)
