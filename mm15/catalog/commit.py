"""Commit staged shards into the catalog as one new snapshot: dedup, decontaminate, account.

The steps tell the curation story:

- stage: load the staged shards that the catalog lacks into temp tables (new_samples, new_images);
- decide (`mm15.catalog.dedup_decisions`): exact dedup, near dup and decontamination. Which copy of a
  duplicate survives: eval before train (benchmarks are fixed; a train copy of an eval sample is
  contamination), then rows already in the catalog, then source and key order. A train sample
  sharing an image (exact or near) with an eval sample is removed; if it was already in the catalog
  it is evicted in this snapshot;
- accept: insert the staged rows that survive, and their images that the catalog lacks;
- reject: every removed row becomes a reject with a reason (quarantined at staging, duplicate,
  contaminated), and evicted catalog rows are deleted;
- record: the accounting per source and split (read = kept + quarantined + duplicates +
  contaminated, and evicted), the committed shards (so reruns skip them) and the commit message.

Everything from reading which shards are new to recording them is one transaction: a failed commit leaves
the catalog unchanged, and one that loses a race with another process's commit starts over on the new
snapshot, deciding again what is new and what is a duplicate.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from mm15.catalog import schema
from mm15.catalog.connection import retrying_conflicts, transaction
from mm15.catalog.dedup_decisions import Decisions, decide
from mm15.catalog.lake import Catalog, sql_string
from mm15.catalog.maintenance import remove_orphaned_files
from mm15.catalog.schema import ACCOUNTING_COLUMNS
from mm15.catalog.staging import ShardSpec, Staging, read_stats, staging_area
from mm15.data.dedup import MAX_DISTANCE
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


def commit_shards(
    catalog: Catalog, staging: Staging, specs: list[ShardSpec], *, message: str, max_distance: int = MAX_DISTANCE
) -> CommitResult:
    """Commit every staged shard in `specs` that the catalog lacks, as one snapshot. If another process
    commits first, start over on its snapshot (for up to MM15_CATALOG_WAIT seconds)."""
    started = time.perf_counter()
    remove_orphaned_files(catalog)  # left by a commit that was killed after writing data files
    result = retrying_conflicts(lambda: _commit_once(catalog, staging, specs, message, max_distance))
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def _commit_once(
    catalog: Catalog, staging: Staging, specs: list[ShardSpec], message: str, max_distance: int
) -> CommitResult:
    """One try: read, decide and write in one transaction, on the snapshot it starts from."""
    con, commit_id = catalog.con, uuid.uuid4().hex
    with transaction(con, catalog.location.data_path):
        specs = _uncommitted(catalog, specs)
        if not specs:
            return CommitResult(catalog.snapshot_id(), False)
        _stage(con, staging, specs)
        decisions = decide(con, max_distance)
        accounting = _write_snapshot(con, staging, specs, decisions, commit_id, message)
    query = "SELECT max(snapshot_id) FROM lake.snapshots() WHERE commit_extra_info->>'commit_id' = ?"
    return CommitResult(
        snapshot=con.execute(query, [commit_id]).fetchone()[0],
        committed=True,
        accounting=accounting,
        reject_sample=_reject_sample(con, commit_id),
    )


def _uncommitted(catalog: Catalog, specs: list[ShardSpec]) -> list[ShardSpec]:
    """The shards the catalog lacks, once each, in key order."""
    done = committed_shards(catalog)
    return sorted({s.key: s for s in specs if s.key not in done}.values(), key=lambda s: s.key)


def _files(staging: Staging, specs: list[ShardSpec], name: str) -> list[str]:
    """Staged files `name` of `specs`: local paths, or URLs that `_stage` lets its connection read."""
    return staging_area(staging).files([s.key for s in specs], name)


def _stage(con: duckdb.DuckDBPyConnection, staging: Staging, specs: list[ShardSpec]) -> None:
    """Load the staged shards: new_samples numbered (_row) by shard and key, new_images once each.

    new_samples keeps the light columns only, and where each row lies in the staged files (_file,
    _position): the view new_sample_rows reads whole rows (messages, boxes, meta) from there when
    needed, so a commit of a million conversations does not hold their text in memory.
    """
    staging_area(staging).register(con)  # a URL staging area is read through fsspec
    files = _files(staging, specs, "samples")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE new_samples AS
        SELECT row_number() OVER (ORDER BY shard, key) AS _row, filename AS _file, file_row_number AS _position,
               {", ".join(LIGHT_COLUMNS)}
        FROM read_parquet(?, filename = true, file_row_number = true)""",
        [files],
    )
    listed = ", ".join(sql_string(f) for f in files)
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW new_sample_rows AS
        SELECT filename AS _file, file_row_number AS _position, * EXCLUDE (filename, file_row_number)
        FROM read_parquet([{listed}], filename = true, file_row_number = true)"""
    )
    con.execute(
        """CREATE OR REPLACE TEMP TABLE new_images AS
        SELECT DISTINCT ON (image_id) * FROM read_parquet(?) ORDER BY image_id""",
        [_files(staging, specs, "images")],
    )


# The columns of staged samples that dedup, decontamination and accounting read.
LIGHT_COLUMNS = ("sample_id", "source", "key", "split", "n_images", "image_ids", "shard")


def _write_snapshot(
    con: duckdb.DuckDBPyConnection,
    staging: Staging,
    specs: list[ShardSpec],
    decisions: Decisions,
    commit_id: str,
    message: str,
) -> list[dict]:
    """Evict, accept, reject and record, in the open transaction; return the accounting. Eviction comes
    first: it deletes by sample_id, and an eval sample identical to the train row it evicts shares that id."""
    con.register("_dropped", _dropped_table(decisions))
    con.register("_evicted", _evicted_table(decisions))
    try:
        evicted_counts = _evict(con)
        _accept(con)
        _reject(con, staging, specs)
        accounting = _record(con, staging, specs, commit_id, message, evicted_counts)
        # Every commit alters this one table: DuckLake fails the later of two overlapping commits
        # (it would merge two sets of inserts, and with them decisions that did not see each other).
        con.execute(f"COMMENT ON TABLE lake.shards IS {sql_string('last commit ' + commit_id)}")
    finally:
        for name in ("_dropped", "_evicted", "_ingests", "_shards"):
            with contextlib.suppress(duckdb.Error):
                con.unregister(name)
    return accounting


def _dropped_table(decisions: Decisions) -> pa.Table:
    drop = decisions.drop
    judged = pa.table(
        {
            "_row": pa.array(list(drop), pa.int64()),
            "reason": pa.array([r.reason for r in drop.values()], pa.string()),
            "detail": pa.array([r.detail for r in drop.values()], pa.string()),
        }
    )
    bulk = decisions.text_only_drop
    return judged if bulk is None else pa.concat_tables([judged, bulk.cast(judged.schema)])


def _evicted_table(decisions: Decisions) -> pa.Table:
    evict = decisions.evict
    judged = pa.table(
        {
            "sample_id": pa.array(list(evict), pa.string()),
            "detail": pa.array(list(evict.values()), pa.string()),
        }
    )
    bulk = decisions.text_only_evict
    table = judged if bulk is None else pa.concat_tables([judged, bulk.cast(judged.schema)])
    return table.set_column(1, "detail", pc.binary_join_element_wise("evicted: ", table["detail"], ""))


def _accept(con: duckdb.DuckDBPyConnection) -> None:
    """Insert the staged rows that were not dropped, and those of their images the catalog lacks."""
    columns = ", ".join(f"r.{c}" for c in schema.SAMPLES.names)
    con.execute(
        f"INSERT INTO lake.samples SELECT {columns} FROM new_samples n JOIN new_sample_rows r USING (_file, _position) "
        "WHERE n._row NOT IN (SELECT _row FROM _dropped) ORDER BY n._row"
    )
    con.execute(
        """INSERT INTO lake.images SELECT i.* FROM new_images i
        WHERE i.image_id IN (SELECT unnest(image_ids) FROM new_samples WHERE _row NOT IN (SELECT _row FROM _dropped))
          AND i.image_id NOT IN (SELECT image_id FROM lake.images)
        ORDER BY i.image_id"""
    )


def _reject(con: duckdb.DuckDBPyConnection, staging: Staging, specs: list[ShardSpec]) -> None:
    """Record the rows quarantined at staging, then the staged rows dropped as duplicate or contaminated."""
    con.execute(
        "INSERT INTO lake.rejects BY NAME SELECT * FROM read_parquet(?)",
        [_files(staging, specs, "rejects")],
    )
    con.execute(
        "INSERT INTO lake.rejects BY NAME SELECT n.source, n.split, n.key, d.reason, d.detail, n.sample_id, n.shard "
        "FROM new_samples n JOIN _dropped d USING (_row) ORDER BY n._row"
    )


def _evict(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, int]]:
    """Delete the evicted catalog rows, each recorded as a contaminated reject; (source, split, count)."""
    con.execute(
        "INSERT INTO lake.rejects BY NAME SELECT s.source, s.split, s.key, ? AS reason, e.detail, "
        "s.sample_id, s.shard "
        "FROM lake.samples s JOIN _evicted e USING (sample_id)",
        [Reason.CONTAMINATED],
    )
    counts = con.execute(
        "SELECT source, split, count(*) FROM lake.samples WHERE sample_id IN (SELECT sample_id FROM _evicted) "
        "GROUP BY ALL"
    ).fetchall()
    con.execute("DELETE FROM lake.samples WHERE sample_id IN (SELECT sample_id FROM _evicted)")
    return counts


def _record(
    con: duckdb.DuckDBPyConnection,
    staging: Staging,
    specs: list[ShardSpec],
    commit_id: str,
    message: str,
    evicted_counts: list[tuple[str, str, int]],
) -> list[dict]:
    """Write the accounting, the committed shards (so reruns skip them) and the commit message."""
    accounting = _accounting(con, staging, specs, commit_id, evicted_counts)
    con.register("_ingests", pa.Table.from_pylist(accounting, schema=schema.INGESTS))
    con.execute("INSERT INTO lake.ingests SELECT * FROM _ingests")
    shard_rows = [
        {"shard": s.key, "source": s.source, "commit_id": commit_id, "read": read_stats(staging, s)["read"]}
        for s in specs
    ]
    con.register("_shards", pa.Table.from_pylist(shard_rows, schema=schema.SHARDS))
    con.execute("INSERT INTO lake.shards SELECT * FROM _shards")
    totals = {k: sum(a[k] for a in accounting) for k in ACCOUNTING_COLUMNS}
    con.execute(
        "CALL lake.set_commit_message('mm15', ?, extra_info => ?)",
        [message, json.dumps({"commit_id": commit_id, "shards": len(specs), **totals})],
    )
    return accounting


def _accounting(con, staging: Staging, specs: list[ShardSpec], commit_id: str, evicted_counts) -> list[dict]:
    """One row per source and split: its shards, and where every row read went (checked to add up)."""
    rows: dict[tuple[str, str], dict] = defaultdict(
        lambda: {"shards": 0, **dict.fromkeys(ACCOUNTING_COLUMNS, 0)}
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
    return [_balanced(commit_id, source, split, r) for (source, split), r in sorted(rows.items())]


def _balanced(commit_id: str, source: str, split: str, row: dict) -> dict:
    """The accounting row, once checked: read = kept + quarantined + duplicates + contaminated."""
    if row["read"] != row["kept"] + row["quarantined"] + row["duplicates"] + row["contaminated"]:
        raise RuntimeError(f"accounting does not add up for {source}/{split}: {row}")
    return {"commit_id": commit_id, "source": source, "split": split, **row}


def _reject_sample(con: duckdb.DuckDBPyConnection, commit_id: str) -> list[dict]:
    """A few rejects of the commit per reason (the first by source and key), for reports."""
    rows = con.execute(
        """SELECT source, key, reason, detail FROM lake.rejects
        WHERE shard IN (SELECT shard FROM lake.shards WHERE commit_id = ?)
        QUALIFY row_number() OVER (PARTITION BY reason ORDER BY source, key) <= 3 ORDER BY reason, source, key""",
        [commit_id],
    ).fetchall()
    return [dict(zip(("source", "key", "reason", "detail"), r, strict=True)) for r in rows]
