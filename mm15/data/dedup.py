"""Near-duplicate images: 256-bit DCT perceptual hashes compared through an exact keyed join.

Two images are near copies (re-encodes, resizes, small edits) when their hashes differ in at most
`MAX_DISTANCE` of 256 bits. Measured on the synthetic sources: re-encoded or resized copies stay
within 10 bits while distinct renders of the same template differ by 16 or more (a 64-bit hash
cannot tell those apart). Pairs are used directly, never chained: A~B and B~C does not make A a copy
of C.

Pairs are found without comparing all pairs, and without missing any (pigeonhole). The hash is cut
into 16 bands of 16 bits; two hashes within d bits differ in at most d bands, so they agree exactly on
at least a = 16 - d bands. The bands are dealt into a - 1 groups (band b into group b % (a - 1)), so
two of the a agreeing bands fall in the same group, and the join keys are the pairs of bands within a
group (32-bit keys): every pair within d bits shares a key. For d = 12: 3 groups of 6, 5 and 5 bands,
35 keys (the fewest pairs that hit every 4 of 16 bands: Turan). Unrelated hashes share a 32-bit key by
chance, so random candidates number about 35 N^2 / 2^33 (4 x 10^5 at N = 10^7) where the former join
on single 16-bit bands made 16 N^2 / 2^17 (1.2 x 10^10): both joins return exactly the same pairs.

`near_image_pairs` runs the join in DuckDB on catalog relations (a commit: staged images against
every image; against 10^6 catalog hashes, 10^4 staged take 1.4 s as before and 10^5 take 2.2 s instead
of 7.2 s). `near_hash_pairs` is the same search in numpy over an array of hashes, all against all (one
sort of N packed 64-bit keys per key: O(N log N) time, O(N) memory; 8 s for 10^7 in bench/dedup.py).
"""

from __future__ import annotations

import json
from collections import defaultdict

import duckdb
import imagehash
import numpy as np
from PIL import Image

from mm15.data.minhash import bucket_pairs
from mm15.data.record import normalise_text, sha256_hex

HASH_BITS = 256
BANDS = 16
MAX_DISTANCE = 12  # must stay below BANDS for the keyed join to find every near pair


def perceptual_hash(img: Image.Image) -> list[int]:
    """256-bit DCT perceptual hash as four signed 64-bit integers (a BIGINT[] column)."""
    bits = imagehash.phash(img, hash_size=16).hash.flatten().astype(np.uint8)
    words = np.packbits(bits).view(">u8").astype(np.uint64)
    return [int(w) - (1 << 64) if w >= 1 << 63 else int(w) for w in words]


def key_bands(max_distance: int = MAX_DISTANCE) -> list[tuple[int, int]]:
    """The join keys for a distance: pairs of bands in the same group (see the module's docstring);
    single bands, as (b, b), when only one band surely agrees (d = 15)."""
    if not 0 <= max_distance < BANDS:
        raise ValueError(f"max_distance must be in [0, {BANDS - 1}] for a {BANDS}-band search")
    groups = BANDS - max_distance - 1
    if groups == 0:
        return [(b, b) for b in range(BANDS)]
    return [(b1, b2) for b1 in range(BANDS) for b2 in range(b1 + 1, BANDS) if b1 % groups == b2 % groups]


# Band b is bits 16 * (b % 4) .. 16 * (b % 4) + 15 of word b // 4; a key's value is its two bands'
# values side by side. Both relations are cut into their keys, joined on (key, value), and the
# candidates are checked on the full 256-bit Hamming distance.
_BAND = "((phash[1 + {b} // 4] >> (16 * ({b} % 4))) & 65535)"
_VALUE = f"(({_BAND.format(b='b1')} << 16) | {_BAND.format(b='b2')})"
_KEY_JOIN = f"""
    WITH k(key, b1, b2) AS (VALUES {{keys}}),
    n AS (SELECT image_id, phash, key, {_VALUE} AS value FROM {{new}} CROSS JOIN k),
    e AS (SELECT image_id, phash, key, {_VALUE} AS value FROM {{every}} CROSS JOIN k)
    SELECT DISTINCT n.image_id, e.image_id
    FROM n JOIN e ON n.key = e.key AND n.value = e.value
    WHERE n.image_id <> e.image_id
      AND bit_count(xor(n.phash[1], e.phash[1]))::INTEGER + bit_count(xor(n.phash[2], e.phash[2]))::INTEGER
        + bit_count(xor(n.phash[3], e.phash[3]))::INTEGER + bit_count(xor(n.phash[4], e.phash[4]))::INTEGER
        <= ?
    ORDER BY 1, 2
"""


def _identifier(name: str) -> str:
    """A relation name as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def near_image_pairs(
    con: duckdb.DuckDBPyConnection, new: str, every: str, max_distance: int = MAX_DISTANCE
) -> list[tuple[str, str]]:
    """Pairs (new image, any image) of different images whose hashes differ in <= max_distance bits.

    `new` and `every` name relations (tables or views) with columns (image_id, phash BIGINT[4]);
    `every` may include `new`.
    """
    keys = ", ".join(f"({n}, {b1}, {b2})" for n, (b1, b2) in enumerate(key_bands(max_distance)))
    sql = _KEY_JOIN.format(keys=keys, new=_identifier(new), every=_identifier(every))
    return con.execute(sql, [int(max_distance)]).fetchall()


def hash_words(phashes: list[list[int]]) -> np.ndarray:
    """Hashes as stored (four signed 64-bit words each) to an (N, 4) uint64 array."""
    return np.asarray(phashes, np.int64).reshape(-1, 4).view(np.uint64)


def distances(words: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Hamming distances between rows i and j of an (N, 4) uint64 array."""
    return np.bitwise_count(words[i] ^ words[j]).sum(axis=1, dtype=np.int64)


def _band(words: np.ndarray, b: int) -> np.ndarray:
    return (words[:, b // 4] >> np.uint64(16 * (b % 4))) & np.uint64(0xFFFF)


def near_hash_pairs(
    words: np.ndarray, max_distance: int = MAX_DISTANCE, chunk: int = 1 << 20
) -> tuple[np.ndarray, int]:
    """Pairs (i, j), i < j, as an (M, 2) int64 array in order, of rows of `words` ((N, 4) uint64
    hashes) within max_distance bits, and the number of candidates checked (summed over keys): the
    keyed join, all against all. Per key, each row's 32-bit value and its index are packed into one
    uint64 and sorted (a plain sort, faster than an argsort)."""
    n = len(words)
    if n >= 1 << 32:
        raise ValueError("at most 2^32 - 1 hashes: the row index is packed into 32 bits")
    index = np.arange(n, dtype=np.uint64)
    found, candidates = np.zeros(0, np.int64), 0
    for b1, b2 in key_bands(max_distance):
        value = (_band(words, b1) << np.uint64(16)) | _band(words, b2)
        packed = np.sort((value << np.uint64(32)) | index)
        del value
        i, j, _, _ = bucket_pairs(packed >> np.uint64(32), (packed & np.uint64(0xFFFFFFFF)).astype(np.int64))
        candidates += len(i)
        near = [distances(words, i[lo : lo + chunk], j[lo : lo + chunk]) for lo in range(0, len(i), chunk)]
        near = np.concatenate(near) <= max_distance if near else np.zeros(0, bool)
        found = np.union1d(found, i[near] * n + j[near])  # merged key by key: a pair found by many keys
    return np.stack(np.divmod(found, n), axis=1), candidates


def neighbours(pairs: list[tuple[str, str]]) -> dict[str, set[str]]:
    """Each image's near copies (symmetric)."""
    near: dict[str, set[str]] = defaultdict(set)
    for a, b in pairs:
        near[a].add(b)
        near[b].add(a)
    return near


def text_key(messages: list[dict[str, str]]) -> str:
    """Equal for conversations that differ only in case and whitespace."""
    return sha256_hex(json.dumps([[m["role"], normalise_text(m["content"])] for m in messages]).encode())
