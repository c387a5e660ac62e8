"""Commit staged shards into the catalog as one new snapshot: dedup, decontaminate, account.

Priority decides which copy of a duplicate survives: eval before train (benchmarks are fixed; a train
copy of an eval sample is contamination), then rows already in the catalog, then source and key order.
A train sample sharing an image (exact or near) with an eval sample is removed; if it was already in
the catalog it is evicted in this snapshot. Every removed row becomes a reject with a reason, and per
source and split: read = kept + quarantined + duplicates + contaminated.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from mm15.catalog import schema
from mm15.catalog.lake import Catalog
from mm15.catalog.staging import ShardSpec, read_stats
from mm15.data.dedup import MAX_DISTANCE, near_image_pairs, neighbours, text_key
from mm15.data.record import Reason


@dataclass
class CommitResult:
    snapshot: int
    committed: bool  # False when every shard was already in the catalog
    accounting: list[dict] = field(default_factory=list)  # one row per (source, split)
    reject_sample: list[dict] = field(default_factory=list)  # a few rejects per reason, for reports
    seconds: float = 0.0


def committed_shards(catalog: Catalog) -> set[str]:
    return {r[0] for r in catalog.con.execute("SELECT shard FROM lake.shards").fetchall()}


def _files(staging: Path, specs: list[ShardSpec], name: str) -> list[str]:
    return [str(staging / s.key / f"{name}.parquet") for s in specs]


@dataclass
class _Candidate:
    priority: int  # eval before train, catalog rows before new ones
    ident: int | str  # new: staging row number; catalog: sample_id
    source: str
    key: str
    split: str
    images: list[str]
    text: str

    @property
    def is_new(self) -> bool:
        return self.priority in (1, 3)


def _decide(catalog: Catalog, max_distance: int) -> tuple[dict[int, tuple[str, str]], dict[str, str]]:
    """Which new rows go (row -> (reason, detail)) and which catalog rows are evicted (sample_id -> detail)."""
    con = catalog.con
    every = "(SELECT image_id, phash FROM lake.images UNION ALL SELECT image_id, phash FROM new_images)"
    near = neighbours(near_image_pairs(con, "new_images", every, max_distance))
    touched = sorted(set(near) | {r[0] for r in con.execute("SELECT image_id FROM new_images").fetchall()})
    con.register("_touched", pa.table({"image_id": pa.array(touched, pa.string())}))
    old = con.execute(
        """
        SELECT sample_id, source, key, split, image_ids, messages FROM lake.samples
        WHERE sample_id IN (SELECT sample_id FROM new_samples)
           OR sample_id IN (SELECT s.sample_id FROM (SELECT sample_id, unnest(image_ids) AS image_id
                                                    FROM lake.samples) s JOIN _touched t USING (image_id))
        ORDER BY sample_id
        """
    ).fetchall()
    new = con.execute(
        "SELECT _row, source, key, split, image_ids, messages FROM new_samples ORDER BY _row"
    ).fetchall()
    eval_images = {
        r[0]
        for r in con.execute(
            "SELECT DISTINCT unnest(image_ids) FROM lake.samples WHERE split = 'eval'"
        ).fetchall()
    }
    con.unregister("_touched")

    candidates = [
        _Candidate(0 if sp == "eval" else 2, i, src, k, sp, imgs, text_key(m))
        for i, src, k, sp, imgs, m in old
    ]
    candidates += [
        _Candidate(1 if sp == "eval" else 3, i, src, k, sp, imgs, text_key(m))
        for i, src, k, sp, imgs, m in new
    ]
    candidates.sort(key=lambda c: (c.priority, c.source, c.key))

    def same(a: str, b: str) -> bool:
        return a == b or b in near.get(a, ())

    eval_owner: dict[str, str] = {i: "an eval sample in the catalog" for i in eval_images}
    kept: dict[tuple[str, str], list[_Candidate]] = defaultdict(list)  # (text, first image) -> kept samples
    drop: dict[int, tuple[str, str]] = {}
    evict: dict[str, str] = {}
    for c in candidates:
        first = c.images[0] if c.images else ""
        firsts = [first, *sorted(near.get(first, ()))]
        original = next(
            (
                k
                for f in firsts
                for k in kept[(c.text, f)]
                if len(k.images) == len(c.images) and all(map(same, c.images, k.images))
            ),
            None,
        )
        if original is not None:
            reason = (
                Reason.CONTAMINATED if (original.split, c.split) == ("eval", "train") else Reason.DUPLICATE
            )
            exact = original.images == c.images
            detail = f"same content as {original.source}:{original.key}" + (
                "" if exact else " (near-identical images)"
            )
        elif c.split == "train" and (
            hit := next(
                (eval_owner[j] for i in c.images for j in (i, *sorted(near.get(i, ()))) if j in eval_owner),
                None,
            )
        ):
            reason, detail = Reason.CONTAMINATED, f"shares an image with {hit}"
        else:
            kept[(c.text, first)].append(c)
            if c.split == "eval":
                for i in c.images:
                    eval_owner.setdefault(i, f"eval sample {c.source}:{c.key}")
            continue
        if c.is_new:
            drop[c.ident] = (reason, detail)
        elif reason == Reason.CONTAMINATED:
            evict[c.ident] = detail
    return drop, evict


def commit_shards(
    catalog: Catalog, staging: Path, specs: list[ShardSpec], *, message: str, max_distance: int = MAX_DISTANCE
) -> CommitResult:
    """Commit every staged shard in `specs` that the catalog lacks, as one snapshot."""
    started = time.perf_counter()
    done = committed_shards(catalog)
    specs = sorted({s.key: s for s in specs if s.key not in done}.values(), key=lambda s: s.key)
    if not specs:
        return CommitResult(catalog.snapshot_id(), False, seconds=time.perf_counter() - started)
    con = catalog.con
    con.execute(
        """CREATE OR REPLACE TEMP TABLE new_samples AS
        SELECT row_number() OVER (ORDER BY shard, key) AS _row, *
        FROM read_parquet(?)""",
        [_files(staging, specs, "samples")],
    )
    con.execute(
        """CREATE OR REPLACE TEMP TABLE new_images AS
        SELECT DISTINCT ON (image_id) * FROM read_parquet(?) ORDER BY image_id""",
        [_files(staging, specs, "images")],
    )
    drop, evict = _decide(catalog, max_distance)

    commit_id = uuid.uuid4().hex
    dropped = pa.table(
        {
            "_row": pa.array(list(drop), pa.int64()),
            "reason": pa.array([r for r, _ in drop.values()], pa.string()),
            "detail": pa.array([d for _, d in drop.values()], pa.string()),
        }
    )
    evicted = pa.table(
        {
            "sample_id": pa.array(list(evict), pa.string()),
            "detail": pa.array([f"evicted: {d}" for d in evict.values()], pa.string()),
        }
    )
    con.register("_dropped", dropped)
    con.register("_evicted", evicted)
    columns = ", ".join(schema.SAMPLES.names)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            f"INSERT INTO lake.samples SELECT {columns} FROM new_samples "
            "WHERE _row NOT IN (SELECT _row FROM _dropped) ORDER BY _row"
        )
        con.execute(
            """INSERT INTO lake.images SELECT i.* FROM new_images i
            WHERE i.image_id IN (SELECT unnest(image_ids) FROM new_samples WHERE _row NOT IN (SELECT _row FROM _dropped))
              AND i.image_id NOT IN (SELECT image_id FROM lake.images)
            ORDER BY i.image_id"""
        )
        con.execute(
            "INSERT INTO lake.rejects BY NAME SELECT * FROM read_parquet(?)",
            [_files(staging, specs, "rejects")],
        )
        con.execute(
            "INSERT INTO lake.rejects BY NAME SELECT n.source, n.split, n.key, d.reason, d.detail, n.sample_id, n.shard "
            "FROM new_samples n JOIN _dropped d USING (_row) ORDER BY n._row"
        )
        con.execute(
            f"INSERT INTO lake.rejects BY NAME SELECT s.source, s.split, s.key, '{Reason.CONTAMINATED}' AS reason, e.detail, "
            "s.sample_id, s.shard "
            "FROM lake.samples s JOIN _evicted e USING (sample_id)"
        )
        evicted_counts = con.execute(
            "SELECT source, split, count(*) FROM lake.samples WHERE sample_id IN (SELECT sample_id FROM _evicted) "
            "GROUP BY ALL"
        ).fetchall()
        con.execute("DELETE FROM lake.samples WHERE sample_id IN (SELECT sample_id FROM _evicted)")

        accounting = _accounting(con, staging, specs, commit_id, evicted_counts)
        con.register("_ingests", pa.Table.from_pylist(accounting, schema=schema.INGESTS))
        con.execute("INSERT INTO lake.ingests SELECT * FROM _ingests")
        shard_rows = [
            {
                "shard": s.key,
                "source": s.source,
                "commit_id": commit_id,
                "read": read_stats(staging, s)["read"],
            }
            for s in specs
        ]
        con.register("_shards", pa.Table.from_pylist(shard_rows, schema=schema.SHARDS))
        con.execute("INSERT INTO lake.shards SELECT * FROM _shards")
        totals = {
            k: sum(a[k] for a in accounting)
            for k in ("read", "kept", "quarantined", "duplicates", "contaminated", "evicted")
        }
        con.execute(
            "CALL lake.set_commit_message('mm15', ?, extra_info => ?)",
            [message, json.dumps({"commit_id": commit_id, "shards": len(specs), **totals})],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        for name in ("_dropped", "_evicted", "_ingests", "_shards"):
            with contextlib.suppress(duckdb.Error):
                con.unregister(name)
    sample = con.execute(
        """SELECT source, key, reason, detail FROM lake.rejects
        WHERE shard IN (SELECT shard FROM lake.shards WHERE commit_id = ?)
        QUALIFY row_number() OVER (PARTITION BY reason ORDER BY source, key) <= 3 ORDER BY reason, source, key""",
        [commit_id],
    ).fetchall()
    return CommitResult(
        snapshot=catalog.snapshot_id(),
        committed=True,
        accounting=accounting,
        reject_sample=[dict(zip(("source", "key", "reason", "detail"), r, strict=True)) for r in sample],
        seconds=round(time.perf_counter() - started, 3),
    )


def _accounting(con, staging: Path, specs: list[ShardSpec], commit_id: str, evicted_counts) -> list[dict]:
    rows: dict[tuple[str, str], dict] = defaultdict(
        lambda: {
            "shards": 0,
            "read": 0,
            "kept": 0,
            "quarantined": 0,
            "duplicates": 0,
            "contaminated": 0,
            "evicted": 0,
        }
    )
    for s in specs:
        stats = read_stats(staging, s)
        row = rows[(s.source, s.split)]
        row["shards"] += 1
        row["read"] += stats["read"]
        row["quarantined"] += stats["quarantined"]
    for source, split, reason, n in con.execute(
        "SELECT n.source, n.split, d.reason, count(*) FROM new_samples n JOIN _dropped d USING (_row) GROUP BY ALL"
    ).fetchall():
        rows[(source, split)]["duplicates" if reason == Reason.DUPLICATE else "contaminated"] += n
    for source, split, n in con.execute(
        "SELECT source, split, count(*) FROM new_samples WHERE _row NOT IN (SELECT _row FROM _dropped) GROUP BY ALL"
    ).fetchall():
        rows[(source, split)]["kept"] += n
    for source, split, n in evicted_counts:
        rows[(source, split)]["evicted"] += n
    out = []
    for (source, split), r in sorted(rows.items()):
        if r["read"] != r["kept"] + r["quarantined"] + r["duplicates"] + r["contaminated"]:
            raise RuntimeError(f"accounting does not add up for {source}/{split}: {r}")
        out.append({"commit_id": commit_id, "source": source, "split": split, **r})
    return out
