"""Duplicate detection: exact content hashes plus perceptual-hash clusters of near-identical images.

Two samples are duplicates when their normalised text is equal and each of their images is the same
or a near copy (perceptual hashes within `max_distance` bits: re-encodes, resizes, small edits).
Near pairs are found without comparing all pairs: the 64-bit hash is cut into 4 bands of 16 bits, and
by pigeonhole any two hashes within 3 bits agree on at least one band, so a join on bands finds them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import duckdb

from mm15.data.record import normalise_text, sha256_hex

BANDS = 4
MAX_DISTANCE = 3  # must stay below BANDS for the band join to find every near pair


class UnionFind:
    """Clusters of items; each cluster is named by its smallest member (deterministic)."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        parent = self.parent
        parent.setdefault(x, x)
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            lo, hi = sorted((ra, rb))
            self.parent[hi] = lo


def near_image_pairs(
    con: duckdb.DuckDBPyConnection, new: str, every: str, max_distance: int = MAX_DISTANCE
) -> list[tuple[str, str]]:
    """Pairs (new image, any image) of different images whose phashes differ in <= max_distance bits.

    `new` and `every` name relations with columns (image_id, phash); `every` may include `new`.
    """
    if not 0 <= max_distance < BANDS:
        raise ValueError(f"max_distance must be in [0, {BANDS - 1}] for a {BANDS}-band search")
    bands = " UNION ALL ".join(
        f"SELECT image_id, phash, {b} AS band, (phash >> {16 * b}) & 65535 AS value FROM {{rel}}"
        for b in range(BANDS)
    )
    return con.execute(
        f"""
        WITH n AS ({bands.format(rel=new)}), e AS ({bands.format(rel=every)})
        SELECT DISTINCT n.image_id, e.image_id
        FROM n JOIN e ON n.band = e.band AND n.value = e.value
        WHERE n.image_id <> e.image_id AND bit_count(xor(n.phash, e.phash)) <= {int(max_distance)}
        ORDER BY 1, 2
        """
    ).fetchall()


def cluster_images(pairs: Iterable[tuple[str, str]]) -> UnionFind:
    clusters = UnionFind()
    for a, b in pairs:
        clusters.union(a, b)
    return clusters


def text_key(messages: list[dict[str, str]]) -> str:
    return sha256_hex(json.dumps([[m["role"], normalise_text(m["content"])] for m in messages]).encode())


def near_key(messages: list[dict[str, str]], image_ids: list[str], clusters: UnionFind) -> str:
    """Equal for samples with the same normalised text whose images are the same or near copies."""
    return sha256_hex(json.dumps([text_key(messages), [clusters.find(i) for i in image_ids]]).encode())
