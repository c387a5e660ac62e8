"""Which component fills each position of a manifest: integer counts from shares, then an order.

Stratified: every full batch holds floor or ceil of ``batch_size * share`` of each component, and
which components get the ceil is scheduled earliest-deadline-first, so the cumulative count of every
component stays within one sample of its expected count after every batch (a short last batch
then makes the totals exact to rounding). Not stratified: the totals are apportioned over the whole
manifest and positions are shuffled globally, so batches vary at random around the shares.
"""

from __future__ import annotations

import numpy as np

_EPS = 1e-9


def largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    """Non-negative integers summing to `total`, each the floor or ceil of its exact quota.

    Ties in the remainders go to the earlier weight, so the result is deterministic.
    """
    weights = np.asarray(weights, dtype=np.float64)
    return _round_to_total(total * weights / weights.sum(), total)


def batch_counts(shares: np.ndarray, batch_size: int, samples: int) -> np.ndarray:
    """Counts per batch and component, shape (n_batches, n_components); the last batch may be short."""
    shares = np.asarray(shares, dtype=np.float64)
    shares = shares / shares.sum()
    quota = batch_size * shares
    base = np.floor(quota + _EPS).astype(np.int64)
    n_full, rest = divmod(samples, batch_size)
    counts = base + _schedule_extras(quota - base, batch_size - int(base.sum()), n_full)
    if rest:
        carry = n_full * quota - counts.sum(axis=0)  # expected minus drawn, so far
        counts = np.vstack([counts, _round_to_total(rest * shares + carry, rest)])
    return counts


def _schedule_extras(fractions: np.ndarray, extras: int, n_batches: int) -> np.ndarray:
    """0/1 per batch and component, `extras` ones per batch, component i's ones at rate fractions[i].

    Component i's k-th one is due by batch ceil(k / fractions[i]) and may come once its cumulative
    deficit is positive; earliest deadline first keeps every deficit within (-1, 1).
    """
    picks = np.zeros((n_batches, len(fractions)), dtype=np.int64)
    if extras == 0:
        return picks
    drawn = np.zeros(len(fractions))
    rate = np.where(fractions > _EPS, fractions, 1.0)
    order_ties = np.arange(len(fractions))
    for b in range(n_batches):
        deficit = (b + 1) * fractions - drawn
        deadline = np.where(deficit > _EPS, np.ceil((drawn + 1) / rate - _EPS), np.inf)
        chosen = np.lexsort((order_ties, -deficit, deadline))[:extras]
        picks[b, chosen] = 1
        drawn[chosen] += 1
    return picks


def component_layout(
    shares: np.ndarray, samples: int, batch_size: int, *, stratified: bool, rng: np.random.Generator
) -> np.ndarray:
    """The component index (into `shares`) of every position 0..samples-1."""
    k = np.arange(len(shares), dtype=np.int32)
    if not stratified:
        layout = np.repeat(k, largest_remainder(samples, shares))
        rng.shuffle(layout)
        return layout
    counts = batch_counts(shares, batch_size, samples)
    layout = np.repeat(np.tile(k, len(counts)), counts.ravel())
    full = samples // batch_size * batch_size
    layout[:full] = rng.permuted(layout[:full].reshape(-1, batch_size), axis=1).ravel()
    rng.shuffle(layout[full:])
    return layout


def _round_to_total(quota: np.ndarray, total: int) -> np.ndarray:
    counts = np.maximum(np.floor(quota), 0).astype(np.int64)
    missing = total - int(counts.sum())
    if missing > 0:
        counts[np.argsort(counts - quota, kind="stable")[:missing]] += 1
    elif missing < 0:  # only when carried errors push some quotas below zero
        over = np.where(counts > 0, counts - quota, -np.inf)
        counts[np.argsort(-over, kind="stable")[:-missing]] -= 1
    return counts
