"""`mm15 catalog`: read-only queries over the catalog (SQL, summaries, snapshots)."""

from __future__ import annotations

from typing import Annotated

import typer

from mm15.catalog.schema import ACCOUNTING_COLUMNS
from mm15.cli.options import AsJson, Snapshot, subcommands
from mm15.cli.output import print_json, print_table

app = subcommands("Query the catalog (read-only): SQL, summaries, snapshots.")


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
) -> None:
    """Run a SQL query over the catalog. Tables: samples, images, rejects, ingests, shards.
    The catalog is opened read-only: statements that would change it are refused."""
    from mm15.catalog import open_catalog

    with open_catalog(snapshot=snapshot) as catalog:
        columns, rows = catalog.query(query)
    if as_json:
        print_json([dict(zip(columns, r, strict=True)) for r in rows])
    else:
        print_table("", columns, rows)


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
