"""`mm15 catalog`: read-only queries over the catalog (SQL, summaries, snapshots)."""

from __future__ import annotations

from typing import Annotated

import typer

from mm15.catalog.schema import ACCOUNTING_COLUMNS
from mm15.cli.options import AsJson, Snapshot, subcommands
from mm15.cli.output import print_json, print_table, say
from mm15.errors import UserError

app = subcommands("Query the catalog (read-only): SQL, summaries, snapshots.")

SQL_ROW_LIMIT = 1_000  # rows `catalog sql` prints unless --limit says otherwise
SQL_MEMORY_LIMIT = "1GB"  # DuckDB memory for one `catalog sql` query ...
SQL_TEMP_LIMIT = "4GB"  # ... and disk it may spill to (MM15_HOME/tmp), before it fails with an error


@app.command("sql")
def sql(
    query: Annotated[
        str,
        typer.Argument(
            metavar="QUERY",
            help='One read-only statement, e.g. "SELECT category, count(*) FROM samples GROUP BY 1"',
        ),
    ],
    as_json: AsJson = False,
    snapshot: Snapshot = None,
    limit: Annotated[
        int,
        typer.Option(help="Print at most this many rows (0: all of them); a last line counts the others."),
    ] = SQL_ROW_LIMIT,
) -> None:
    """Run a SQL query over the catalog. Tables: samples, images, rejects, ingests, shards.
    The catalog is opened read-only: statements that would change it are refused. A query has
    1GB of memory (and 4GB of disk to spill to): one that needs more ends with an error."""
    from mm15.catalog import open_catalog

    if limit < 0:
        raise UserError(f"--limit must be 0 (no limit) or more, got {limit}")
    with open_catalog(snapshot=snapshot, memory_limit=SQL_MEMORY_LIMIT, temp_limit=SQL_TEMP_LIMIT) as catalog:
        page = catalog.query_page(query, limit=limit or None)
    if as_json:
        print_json([dict(zip(page.columns, r, strict=True)) for r in page.rows])
    else:
        print_table("", page.columns, page.rows)
    if page.more:
        rows = len(page.rows) + page.more
        total = f"{rows:,}" if page.more_exact else f"more than {rows:,}"
        note = f"{len(page.rows):,} of {total} rows shown (--limit N shows N, --limit 0 all)"
        if as_json:
            typer.echo(note, err=True)
        else:
            say(note)


def catalog_summary(snapshot: int | None = None) -> dict:
    """Samples per category and split, rejects per reason, of a snapshot (default: the latest)."""
    from mm15.catalog import open_catalog

    with open_catalog(snapshot=snapshot) as catalog:
        return {
            "snapshot": catalog.snapshot_id(),
            "categories": {
                c: {"train": t, "eval": e, "total": n} for c, t, e, n in catalog.category_counts()
            },
            "rejects": dict(catalog.reject_counts()),
        }


def print_summary(summary: dict) -> None:
    rows = [[c, n["train"], n["eval"], n["total"]] for c, n in summary["categories"].items()]
    print_table(f"Catalog snapshot {summary['snapshot']}", ["category", "train", "eval", "total"], rows)
    if summary["rejects"]:
        print_table("Rejects", ["reason", "rows"], summary["rejects"].items())


@app.command("show")
def show(snapshot: Snapshot = None, as_json: AsJson = False) -> None:
    """Samples per category and split, and rejects per reason."""
    summary = catalog_summary(snapshot)
    if as_json:
        print_json(summary)
    else:
        print_summary(summary)


@app.command("snapshots")
def snapshots(as_json: AsJson = False) -> None:
    """Every committed snapshot with its message and accounting totals. Snapshot 0 is the empty catalog and
    snapshot 1 created its tables; curations and ingests follow."""
    from mm15.catalog import open_catalog

    with open_catalog() as catalog:
        snaps = catalog.snapshots()
    if as_json:
        print_json(snaps)
        return
    rows = [
        [s["snapshot"], s["time"], s["message"], *(s["info"].get(c, "") for c in ACCOUNTING_COLUMNS)]
        for s in snaps
    ]
    print_table("Snapshots", ["snapshot", "time", "message", *ACCOUNTING_COLUMNS], rows)


@app.command("vacuum")
def vacuum(
    min_age: float = typer.Option(
        24.0,
        "--min-age",
        help="hours: younger unreferenced files may belong to a commit still running in another process",
    ),
) -> None:
    """Remove data files that no snapshot references (left by a curation killed while committing) once
    they are --min-age hours old. Every commit does this too (at 24 h); the catalog's contents do not
    change. Use a smaller --min-age only when no other process is committing to this catalog."""
    from mm15.catalog import catalog_exists, open_catalog
    from mm15.catalog.maintenance import remove_orphaned_files

    if not catalog_exists():
        raise UserError("no catalog here: run `mm15 curate` first (or set MM15_HOME)")
    with open_catalog(read_only=False) as catalog:
        removed = remove_orphaned_files(catalog, min_age_s=min_age * 3600)
    for path in removed:
        say(f"removed {path}")
    say(f"{len(removed)} orphaned file(s) removed.")
