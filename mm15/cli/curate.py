"""`mm15 curate` and `mm15 ingest`: new catalog snapshots from the synthetic sources and real datasets."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from mm15.catalog.schema import ACCOUNTING_COLUMNS
from mm15.cli.orchestration import run_flow, use_local_prefect
from mm15.cli.output import print_table, say


def print_curation(result: dict, started: float) -> None:
    """The accounting table of a curation result and a sample of its rejects."""
    if not result["committed"]:
        say(f"Nothing new: the catalog is up to date (snapshot {result['snapshot']}).")
        return
    columns = ["source", "split", *ACCOUNTING_COLUMNS]
    print_table(
        f"Snapshot {result['snapshot']}", columns, [[a[c] for c in columns] for a in result["accounting"]]
    )
    if result["reject_sample"]:
        rows = [[r["reason"], f"{r['source']}:{r['key']}", r["detail"][:80]] for r in result["reject_sample"]]
        print_table("Some rejects", ["reason", "where", "detail"], rows)
    say(f"Committed snapshot {result['snapshot']} in {time.perf_counter() - started:.1f} s.")


def curate(
    preset: Annotated[
        str, typer.Option(help="Synthetic data sizes (catalogs/synthetic.yaml): tiny, small.")
    ] = "tiny",
    sources: Annotated[
        bool, typer.Option(help="Also ingest the sources configured in catalogs/sources/.")
    ] = True,
) -> None:
    """Generate the synthetic sources, ingest configured sources, validate, dedup, decontaminate, and commit a
    new catalog snapshot. Reruns add only what changed; an interrupted run resumes where it stopped."""
    from mm15.catalog.plan import synthetic_shards
    from mm15.catalog.sources import configured_sources

    synthetic_shards(preset)  # a bad preset, synthetic.yaml or source file fails here, before any flow
    if sources:
        configured_sources()
    started = time.perf_counter()
    use_local_prefect()
    from flows.curate import curate as curate_flow

    result = run_flow(curate_flow, preset=preset, sources=None if sources else [])
    print_curation(result, started)


def ingest(
    path: Annotated[Path, typer.Argument(metavar="PATH", help="A file or a folder of files in FORMAT.")],
    format: Annotated[str, typer.Option("--format", help="llava | hf-parquet | wds-ocr | jsonl-text")],
    name: Annotated[str, typer.Option(help="Source name, the `source` column in the catalog.")],
    category: Annotated[
        str, typer.Option(help="caption ocr general text_rich refer_ground science math code ...")
    ],
    split: Annotated[
        str, typer.Option(help="train or eval (eval samples are kept out of training data).")
    ] = "train",
) -> None:
    """Add a real dataset to the catalog as source NAME and commit a snapshot. Bad records are quarantined
    with a reason (see `mm15 catalog sql "SELECT * FROM rejects"`); a file of which no record can be read
    in FORMAT is refused and nothing is committed."""
    from mm15.catalog.sources import source_config
    from mm15.data.adapters import list_shards
    from mm15.errors import UserError

    source = source_config("mm15 ingest", name=name, format=format, path=path, category=category, split=split)
    if not source.path.exists():
        raise UserError(f"{path} does not exist")
    try:
        list_shards(source.format, source.path)
    except ValueError as e:
        raise UserError(str(e)) from None
    started = time.perf_counter()
    use_local_prefect()
    from flows.curate import ingest as ingest_flow

    result = run_flow(
        ingest_flow, path=str(source.path), format=format, name=name, category=category, split=split
    )
    print_curation(result, started)
