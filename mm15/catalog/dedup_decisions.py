"""Which staged rows a commit drops and which catalog rows it evicts: dedup and decontamination.

The staged rows (temp table `new_samples`, images in `new_images`) compete with the catalog rows
they may copy. Every candidate is judged in `survival_order`, and the first copy of a sample wins:

1. near dup: the staged images' near copies (<= max_distance bits apart) among the catalog's
   and the staged images, found by the band join of `mm15.data.dedup`;
2. exact dedup: a sample with the same normalised text and the same images, image by image
   (equal or near copies), as a sample already kept is a duplicate of it, or contamination when
   the kept one is eval and this one train;
3. decontaminate: a train sample with an image (or a near copy of one) of a kept eval sample is
   contaminated;
4. accept: anything else is kept, and an eval sample's images become off limits to train.

A staged row that loses is dropped; a catalog row that loses to contamination is evicted.

Samples without images are judged in one query (`text_only_decisions`): for them, the same normalised
text is the same sample_id, and only exact dedup applies. Only samples with images are judged one by
one in Python, so a large text-only ingest costs neither time nor memory here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import NamedTuple

import duckdb
import pyarrow as pa

from mm15.data.dedup import near_image_pairs, neighbours, text_key
from mm15.data.record import Reason

CATALOG_EVAL = "an eval sample in the catalog"


class Removal(NamedTuple):
    reason: str  # Reason.DUPLICATE or Reason.CONTAMINATED
    detail: str


@dataclass
class Decisions:
    """What a commit removes: judged one by one (samples with images), and in bulk (without)."""

    drop: dict[int, Removal] = field(default_factory=dict)  # staged row number -> removal
    evict: dict[str, str] = field(default_factory=dict)  # catalog sample_id -> detail
    text_only_drop: pa.Table | None = None  # _row, reason, detail
    text_only_evict: pa.Table | None = None  # sample_id, detail


@dataclass
class Candidate:
    """A sample competing to stay: a staged row, or a catalog row that a staged row may copy."""

    in_catalog: bool
    ident: int | str  # staged: row number in new_samples; catalog: sample_id
    source: str
    key: str
    split: str
    images: list[str]
    text: str  # text_key of the messages

    @property
    def first_image(self) -> str:
        return self.images[0] if self.images else ""


def survival_order(c: Candidate) -> tuple:
    """Sort key: of two copies of a sample, the one that sorts first survives.

    Eval before train: benchmarks are fixed, so a train copy of an eval sample is contamination,
    never the other way round. Within a split, rows already in the catalog before new ones, so a
    commit never replaces a kept row by its copy. Then source and key, so that the survivor does not
    depend on shard or row order. (The sort is stable: equal keys keep catalog rows in sample_id
    order and staged rows in row order.)
    """
    return (c.split != "eval", not c.in_catalog, c.source, c.key)


def decide(con: duckdb.DuckDBPyConnection, max_distance: int) -> Decisions:
    """Judge every candidate in survival order: which staged rows go and which catalog rows are evicted."""
    near = near_copies(con, max_distance)
    candidates = sorted(catalog_candidates(con, near) + staged_candidates(con), key=survival_order)
    judge = Judge(near, catalog_eval_images(con))
    decisions = Decisions(**text_only_decisions(con))
    for c in candidates:
        removal = judge.copy_of(c) or judge.contamination(c)
        if removal is None:
            judge.accept(c)
        elif not c.in_catalog:
            decisions.drop[c.ident] = removal
        elif removal.reason == Reason.CONTAMINATED:
            decisions.evict[c.ident] = removal.detail
    return decisions


def near_copies(con: duckdb.DuckDBPyConnection, max_distance: int) -> dict[str, set[str]]:
    """Near dup: each staged image's near copies among catalog and staged images (and the reverse)."""
    con.execute(
        """CREATE OR REPLACE TEMP VIEW every_image AS
        SELECT image_id, phash FROM lake.images UNION ALL SELECT image_id, phash FROM new_images"""
    )
    try:
        return neighbours(near_image_pairs(con, "new_images", "every_image", max_distance))
    finally:
        con.execute("DROP VIEW IF EXISTS temp.every_image")


def catalog_candidates(con: duckdb.DuckDBPyConnection, near: dict[str, set[str]]) -> list[Candidate]:
    """Catalog rows a staged row may copy: the same sample_id, or an image staged or near a staged one."""
    staged = {r[0] for r in con.execute("SELECT image_id FROM new_images").fetchall()}
    touched = sorted(set(near) | staged)
    con.register("_touched", pa.table({"image_id": pa.array(touched, pa.string())}))
    try:
        rows = con.execute(
            """
            SELECT sample_id, source, key, split, image_ids, messages FROM lake.samples
            WHERE sample_id IN (SELECT sample_id FROM new_samples WHERE n_images > 0)
               OR sample_id IN (SELECT s.sample_id FROM (SELECT sample_id, unnest(image_ids) AS image_id
                                                        FROM lake.samples) s JOIN _touched t USING (image_id))
            ORDER BY sample_id
            """
        ).fetchall()
    finally:
        con.unregister("_touched")
    return [Candidate(True, i, src, k, sp, imgs, text_key(m)) for i, src, k, sp, imgs, m in rows]


def staged_candidates(con: duckdb.DuckDBPyConnection) -> list[Candidate]:
    rows = con.execute(
        "SELECT n._row, n.source, n.key, n.split, n.image_ids, r.messages "
        "FROM new_samples n JOIN new_sample_rows r USING (_file, _position) WHERE n.n_images > 0 ORDER BY n._row"
    ).fetchall()
    return [Candidate(False, i, src, k, sp, imgs, text_key(m)) for i, src, k, sp, imgs, m in rows]


def catalog_eval_images(con: duckdb.DuckDBPyConnection) -> set[str]:
    query = "SELECT DISTINCT unnest(image_ids) FROM lake.samples WHERE split = 'eval'"
    return {r[0] for r in con.execute(query).fetchall()}


class Judge:
    """The samples kept so far, and the rules a candidate is judged by against them."""

    def __init__(self, near: dict[str, set[str]], catalog_eval_images: set[str]):
        self.near = near
        self.kept: dict[tuple[str, str], list[Candidate]] = defaultdict(list)  # (text, first image) -> kept
        self.eval_owner: dict[str, str] = dict.fromkeys(catalog_eval_images, CATALOG_EVAL)  # image -> who

    def _near_or_self(self, image: str) -> list[str]:
        return [image, *sorted(self.near.get(image, ()))]

    def _same_images(self, a: list[str], b: list[str]) -> bool:
        """Image by image, equal or near copies."""
        return len(a) == len(b) and all(
            x == y or y in self.near.get(x, ()) for x, y in zip(a, b, strict=True)
        )

    def copy_of(self, c: Candidate) -> Removal | None:
        """Exact dedup (and near dup): a kept sample with the same text and the same or near images."""
        original = next(
            (
                k
                for first in self._near_or_self(c.first_image)
                for k in self.kept.get((c.text, first), ())
                if self._same_images(c.images, k.images)
            ),
            None,
        )
        if original is None:
            return None
        contaminated = (original.split, c.split) == ("eval", "train")
        reason = Reason.CONTAMINATED if contaminated else Reason.DUPLICATE
        near = "" if original.images == c.images else " (near-identical images)"
        return Removal(reason, f"same content as {original.source}:{original.key}{near}")

    def contamination(self, c: Candidate) -> Removal | None:
        """Decontaminate: a train sample with an image, or a near copy of one, of a kept eval sample."""
        if c.split != "train":
            return None
        owner = next(
            (self.eval_owner[j] for i in c.images for j in self._near_or_self(i) if j in self.eval_owner),
            None,
        )
        return None if owner is None else Removal(Reason.CONTAMINATED, f"shares an image with {owner}")

    def accept(self, c: Candidate) -> None:
        """Keep `c`: later copies of it are duplicates, and train samples with its eval images contaminated."""
        self.kept[(c.text, c.first_image)].append(c)
        if c.split == "eval":
            for image in c.images:
                self.eval_owner.setdefault(image, f"eval sample {c.source}:{c.key}")


# Exact dedup of samples without images, as `Judge` would decide it: in each group of equal sample_id,
# the first in survival order stays; each other is a duplicate of it, or contaminated when it is eval
# and the other train. Staged losers are dropped; catalog losers are evicted when contaminated.
_TEXT_ONLY_RANKED = """
    WITH candidates AS (
        SELECT false AS in_catalog, _row, sample_id, source, key, split FROM new_samples WHERE n_images = 0
        UNION ALL
        SELECT true, NULL, sample_id, source, key, split FROM lake.samples
        WHERE n_images = 0 AND sample_id IN (SELECT sample_id FROM new_samples WHERE n_images = 0)
    )
    SELECT *,
        row_number() OVER survival AS rank,
        first_value(split) OVER survival AS first_split,
        first_value(source || ':' || key) OVER survival AS first_where
    FROM candidates
    WINDOW survival AS (PARTITION BY sample_id ORDER BY split <> 'eval', NOT in_catalog, source, key, _row)
"""


def text_only_decisions(con: duckdb.DuckDBPyConnection) -> dict[str, pa.Table]:
    """Exact dedup of the staged samples without images, in SQL: drops and evictions as Arrow tables."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE text_only_ranked AS {_TEXT_ONLY_RANKED}")
    try:
        losers = """FROM text_only_ranked WHERE rank > 1"""
        reason = "CASE WHEN first_split = 'eval' AND split = 'train' THEN ? ELSE ? END"
        params = [Reason.CONTAMINATED, Reason.DUPLICATE]
        drop = con.execute(
            f"SELECT _row, {reason} AS reason, 'same content as ' || first_where AS detail "
            f"{losers} AND NOT in_catalog ORDER BY _row",
            params,
        ).to_arrow_table()
        evict = con.execute(
            f"SELECT sample_id, 'same content as ' || first_where AS detail {losers} AND in_catalog "
            "AND first_split = 'eval' AND split = 'train' ORDER BY sample_id"
        ).to_arrow_table()
    finally:
        con.execute("DROP TABLE IF EXISTS temp.text_only_ranked")
    return {"text_only_drop": drop, "text_only_evict": evict}
