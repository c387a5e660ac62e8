"""Near-duplicate images: 256-bit DCT perceptual hashes compared through a band join.

Two images are near copies (re-encodes, resizes, small edits) when their hashes differ in at most
`MAX_DISTANCE` of 256 bits. Measured on the synthetic sources: re-encoded or resized copies stay
within 10 bits while distinct renders of the same template differ by 16 or more (a 64-bit hash
cannot tell those apart). Pairs are found without comparing all pairs: the hash is cut into 16
bands of 16 bits, and by pigeonhole two hashes within 15 bits agree on at least one band, so a join
on bands finds every near pair. Pairs are used directly, never chained: A~B and B~C does not make
A a copy of C.
"""

from __future__ import annotations

import json
from collections import defaultdict

import duckdb
import imagehash
import numpy as np
from PIL import Image

from mm15.data.record import normalise_text, sha256_hex

HASH_BITS = 256
BANDS = 16
MAX_DISTANCE = 12  # must stay below BANDS for the band join to find every near pair


def perceptual_hash(img: Image.Image) -> list[int]:
    """256-bit DCT perceptual hash as four signed 64-bit integers (a BIGINT[] column)."""
    bits = imagehash.phash(img, hash_size=16).hash.flatten().astype(np.uint8)
    words = np.packbits(bits).view(">u8").astype(np.uint64)
    return [int(w) - (1 << 64) if w >= 1 << 63 else int(w) for w in words]


# One fixed statement: every relation is cut into its 16 bands of 16 bits (band b is bits
# 16 * (b % 4) .. 16 * (b % 4) + 15 of word b // 4), the bands are joined on (band, value), and the
# candidates are checked on the full 256-bit Hamming distance.
_BAND_JOIN = """
    WITH n AS (
        SELECT image_id, phash, band, (phash[1 + band // 4] >> (16 * (band % 4))) & 65535 AS value
        FROM {new} CROSS JOIN range(16) t(band)
    ), e AS (
        SELECT image_id, phash, band, (phash[1 + band // 4] >> (16 * (band % 4))) & 65535 AS value
        FROM {every} CROSS JOIN range(16) t(band)
    )
    SELECT DISTINCT n.image_id, e.image_id
    FROM n JOIN e ON n.band = e.band AND n.value = e.value
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
    if not 0 <= max_distance < BANDS:
        raise ValueError(f"max_distance must be in [0, {BANDS - 1}] for a {BANDS}-band search")
    sql = _BAND_JOIN.format(new=_identifier(new), every=_identifier(every))
    return con.execute(sql, [int(max_distance)]).fetchall()


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
