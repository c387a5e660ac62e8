"""Near-duplicate texts: MinHash signatures of shingle sets, and an LSH search that scales to 10^7+.

Signature: the minimum of each of `num_perm` universal hashes h(x) = (a x + b) mod (2^61 - 1) over the
32-bit hashes of a text's shingles (word n-grams). Two sets agree on a row with probability equal to
their Jaccard similarity, so the fraction of agreeing rows estimates it (standard deviation
sqrt(J (1 - J) / num_perm): 0.035 at J = 0.8 with 128 rows).

Storage: `compact` keeps the low 16 bits of each row (256 bytes a record at 128 rows, 2.6 GB for 10^7).
Two different minima then agree by chance with probability 2^-16, which raises an estimate by at most
(1 - J) / 65536, and a band of 4 rows is exactly one 64-bit key.

Search (banding): the signature is cut into `bands` bands of `rows` rows, each band's values become one
64-bit key, and records sharing a key in some band are candidates, found one band at a time by sorting
the N keys (argsort: O(N log N) time and O(N) memory per band, whatever the data). A pair of Jaccard s
is a candidate with probability 1 - (1 - s^r)^b (the S-curve); unrelated records share a key with
probability 2^-64 a band, so random candidates stay near b N^2 / 2^65 (0.1 at N = 10^8). With 128 rows
at threshold 0.8 the probability that a pair is never a candidate (`s_curve`) is:

    bands x rows   at J = 0.8   at J = 0.7   candidate at J = 0.5
    16 x 8         5.3e-2       3.9e-1       0.06
    21 x 6         1.7e-3       7.2e-2       0.28
    25 x 5         4.9e-5       1.0e-2       0.55
    32 x 4         4.8e-8       1.5e-4       0.87   <- chosen

32 x 4 makes the banding's loss negligible down to the verification threshold below; its price is that
pairs of J ~ 0.5 become candidates too (verified and rejected: work only where such pairs exist).

Verification: a candidate is kept when its estimate reaches `verify_at`. An estimate of a pair exactly at
the threshold is below the threshold half the time, so to find >= 99% of the pairs whose exact Jaccard
reaches the threshold, `verify_at` defaults to the threshold minus a binomial margin: the lowest
estimate that a pair at the threshold falls below with probability <= VERIFY_MISS (0.6875 for 0.8 and
128 rows). The price: pairs of exact Jaccard down to ~0.6 can be returned. Pass verify_at=threshold
to return only pairs whose estimate reaches the threshold.

Big buckets (many records sharing a key, e.g. thousands of copies of a boilerplate text) would make
O(m^2) pairs: a bucket of more than `max_bucket` records instead links each member to its smallest
index only (m - 1 pairs, the same leader in every band where the copies meet). Pairs between two other
members of such a bucket are then not returned (unless another band finds them); they are counted in
`LshStats.skipped_pairs`, never dropped silently. For dedup (keep one of each group) the star is enough.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from mm15.data.record import normalise_text

NUM_PERM = 128
THRESHOLD = 0.8
BANDS, ROWS = 32, 4
SHINGLE_WORDS = 3  # short conversational texts: one changed word spoils at most 3 shingles
MAX_BUCKET = 100  # all pairs up to 4,950 per bucket; beyond, a star around the smallest index
VERIFY_MISS = 1e-3
EMPTY = np.uint32(0xFFFFFFFF)  # the signature of an empty set: equal for every empty text
_PRIME = np.uint64((1 << 61) - 1)
_MIX = np.uint64(0x9E3779B97F4A7C15)


def shingles(text: str, words: int = SHINGLE_WORDS) -> np.ndarray:
    """The distinct 32-bit hashes of a text's word n-grams (lower case, whitespace collapsed);
    a text shorter than n words is one shingle."""
    tokens = normalise_text(text).split()
    if not tokens:
        return np.zeros(0, np.uint32)
    h = np.array([zlib.crc32(t.encode()) for t in tokens], np.uint64)
    n = min(words, len(h))
    grams = np.zeros(len(h) - n + 1, np.uint64)
    for k in range(n):  # an order-sensitive mix of the n word hashes (uint64 arithmetic wraps)
        grams = (grams ^ h[k : len(h) - n + 1 + k]) * _MIX
        grams ^= grams >> np.uint64(29)
    return np.unique((grams >> np.uint64(32)).astype(np.uint32))


def _coefficients(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """a in [1, 2^32), b in [0, 2^32): a x + b < 2^64 for 32-bit x, so uint64 never overflows."""
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 1 << 32, num_perm, dtype=np.uint64)
    return a, rng.integers(0, 1 << 32, num_perm, dtype=np.uint64)


def signatures(
    sets: Sequence[np.ndarray], num_perm: int = NUM_PERM, seed: int = 0, batch: int = 1 << 15
) -> np.ndarray:
    """MinHash signatures (len(sets), num_perm) uint32 of sets of 32-bit shingle hashes; deterministic
    for a seed. Sets are hashed `batch` elements at a time (memory: batch x num_perm x 24 bytes)."""
    a, b = _coefficients(num_perm, seed)
    out = np.full((len(sets), num_perm), EMPTY, np.uint32)
    start = 0
    while start < len(sets):
        stop, size = start, 0
        while stop < len(sets) and (stop == start or size + len(sets[stop]) <= batch):
            size += len(sets[stop])
            stop += 1
        rows = [i for i in range(start, stop) if len(sets[i])]
        if rows:
            x = np.concatenate([np.asarray(sets[i], np.uint64) for i in rows])
            v = x[:, None] * a + b
            v = (v & _PRIME) + (v >> np.uint64(61))  # mod 2^61 - 1 without a division
            v -= _PRIME * (v >= _PRIME)
            offsets = np.cumsum([0] + [len(sets[i]) for i in rows[:-1]])
            out[rows] = np.minimum.reduceat((v & np.uint64(0xFFFFFFFF)).astype(np.uint32), offsets, axis=0)
        start = stop
    return out


def compact(sig: np.ndarray) -> np.ndarray:
    """The low 16 bits of each row (see the module's note on storage)."""
    return sig.astype(np.uint16)


def estimate(a: np.ndarray, b: np.ndarray) -> np.ndarray | float:
    """Estimated Jaccard: the fraction of agreeing rows (along the last axis)."""
    return np.mean(np.asarray(a) == np.asarray(b), axis=-1)


def s_curve(s: float, bands: int = BANDS, rows: int = ROWS) -> float:
    """Probability that a pair of Jaccard s shares a key in at least one band."""
    return 1 - (1 - s**rows) ** bands


def verify_threshold(
    threshold: float = THRESHOLD, num_perm: int = NUM_PERM, miss: float = VERIFY_MISS
) -> float:
    """The highest m / num_perm such that a pair at `threshold` agrees on fewer than m rows with
    probability <= miss (binomial)."""
    below, m = 0.0, 0
    while m <= num_perm:
        p = math.comb(num_perm, m) * threshold**m * (1 - threshold) ** (num_perm - m)
        if below + p > miss:
            break
        below += p
        m += 1
    return m / num_perm


def band_keys(sig: np.ndarray, band: int, rows: int) -> np.ndarray:
    """One int64 key a record for rows band*rows .. band*rows+rows-1: the values themselves when they
    fill 64 bits exactly (4 x 16 bits), else a 64-bit mix of them."""
    block = np.ascontiguousarray(sig[:, band * rows : (band + 1) * rows])
    if block.dtype.itemsize * rows == 8:
        return block.view(np.int64).ravel()
    h = np.full(len(block), (band + 1) * int(_MIX) % (1 << 64), np.uint64)
    for c in range(rows):
        h = (h ^ block[:, c].astype(np.uint64)) * _MIX
        h ^= h >> np.uint64(31)
    return h.view(np.int64)


def bucket_pairs(
    keys: np.ndarray, members: np.ndarray, max_bucket: int | None = None
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Pairs (i < j) of members sharing a key, given keys sorted and members in the same order: every
    pair of a bucket of up to max_bucket members, a star around the smallest member beyond (None: no
    cap). Returns (i, j, oversized buckets, pairs skipped in them)."""
    dup = np.flatnonzero(keys[1:] == keys[:-1])  # position p: keys[p] == keys[p + 1]
    if not len(dup):
        return np.zeros(0, np.int64), np.zeros(0, np.int64), 0, 0
    breaks = dup[1:] != dup[:-1] + 1
    starts = dup[np.r_[True, breaks]]
    sizes = dup[np.r_[breaks, True]] - starts + 2
    big = sizes > max_bucket if max_bucket is not None else np.zeros(len(sizes), bool)
    out_i, out_j = [], []
    for m in np.unique(sizes[~big]):
        at = starts[(sizes == m) & ~big][:, None]
        ti, tj = np.triu_indices(m, 1)
        out_i.append(members[at + ti].ravel())
        out_j.append(members[at + tj].ravel())
    skipped = 0
    for p, m in zip(starts[big], sizes[big], strict=True):
        group = members[p : p + m]
        leader = group.min()
        out_i.append(np.full(m - 1, leader, np.int64))
        out_j.append(group[group != leader].astype(np.int64))
        skipped += int(m) * (int(m) - 1) // 2 - (int(m) - 1)
    i, j = np.concatenate(out_i).astype(np.int64), np.concatenate(out_j).astype(np.int64)
    return np.minimum(i, j), np.maximum(i, j), int(big.sum()), skipped


@dataclass
class LshStats:
    bands: int
    rows: int
    verify_at: float
    candidates: int = 0  # distinct candidate pairs, all verified
    found: int = 0  # pairs whose estimate reached verify_at
    oversized_buckets: int = 0  # (band, key) buckets of more than max_bucket records
    skipped_pairs: int = 0  # pairs inside those buckets not emitted (linked to the smallest index instead)


def near_pairs(
    sig: np.ndarray,
    threshold: float = THRESHOLD,
    bands: int = BANDS,
    rows: int = ROWS,
    max_bucket: int | None = MAX_BUCKET,
    verify_at: float | None = None,
    workers: int = 2,
    chunk: int = 1 << 17,
) -> tuple[np.ndarray, LshStats]:
    """Pairs (i, j), i < j, as an (M, 2) int64 array in order, of records whose signatures (rows of
    `sig`, any unsigned dtype) agree on >= verify_at of their rows; see the module's notes. Bands are
    sorted `workers` at a time (numpy sorts release the GIL)."""
    n, k = sig.shape
    if bands * rows > k:
        raise ValueError(f"{bands} bands x {rows} rows need {bands * rows} rows, the signatures have {k}")
    stats = LshStats(bands, rows, verify_threshold(threshold, k) if verify_at is None else verify_at)

    def one_band(band: int) -> tuple[np.ndarray, int, int]:
        keys = band_keys(sig, band, rows)
        order = np.argsort(keys)
        i, j, big, skipped = bucket_pairs(keys[order], order, max_bucket)
        return np.unique(i * n + j), big, skipped

    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(one_band, range(bands)))
    codes = np.unique(np.concatenate([r[0] for r in results]))
    stats.oversized_buckets = sum(r[1] for r in results)
    stats.skipped_pairs = sum(r[2] for r in results)
    stats.candidates = len(codes)
    need = math.ceil(stats.verify_at * k - 1e-9)  # rows that must agree
    kept = []
    for lo in range(0, len(codes), chunk):
        i, j = np.divmod(codes[lo : lo + chunk], n)
        agree = np.count_nonzero(sig[i] == sig[j], axis=1)
        kept.append(codes[lo : lo + chunk][agree >= need])
    found = np.concatenate(kept) if kept else np.zeros(0, np.int64)
    stats.found = len(found)
    return np.stack(np.divmod(found, n), axis=1), stats
