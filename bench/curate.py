"""Curation benchmark: synthetic generation, validation + staging, commit, and a catalog query at 1M rows.

    python bench/curate.py [--preset tiny] [--rows 1000000]

Runs in one process on one core (the flow spreads shards over cores), so samples/s here is per core.
Peak memory is the process's maximum resident set size.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from mm15.catalog import open_catalog
from mm15.catalog.commit import commit_shards
from mm15.catalog.plan import synthetic_shards
from mm15.catalog.staging import stage_shard
from mm15.data.synthetic import generate


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_generation(specs) -> list[list]:
    per_source: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for spec in specs:
        started = time.perf_counter()
        n = sum(
            1 for _ in generate(spec.source, spec.split, spec.start, spec.count, spec.seed, spec.image_size)
        )
        per_source[spec.source][0] += n
        per_source[spec.source][1] += time.perf_counter() - started
    return [[s, n, f"{t:.2f}", f"{n / t:.0f}"] for s, (n, t) in sorted(per_source.items())]


def bench_catalog_query(rows: int, folder: Path) -> tuple[float, float, float]:
    """Fill a catalog with `rows` metadata-only samples, then time a category count from a cold open."""
    with open_catalog(folder, read_only=False) as catalog:
        started = time.perf_counter()
        catalog.con.execute(
            f"""INSERT INTO lake.samples
            SELECT sha256(i::VARCHAR), (hash(i) >> 1)::BIGINT, 'source_' || (i % 30), 'k' || i,
                   ['caption','ocr','general','text_rich','refer_ground','science','math','code','multi_image',
                    'text_only'][1 + i % 10], CASE WHEN i % 50 = 0 THEN 'eval' ELSE 'train' END,
                   'task', (i % 3)::TINYINT, 1, [sha256(('img' || i))],
                   [{{'role': 'user', 'content': '<image>question ' || i}}, {{'role': 'assistant', 'content': 'answer'}}],
                   [], '{{}}', 30, 'bench'
            FROM range({rows}) t(i)"""
        )
        fill = time.perf_counter() - started
    started = time.perf_counter()
    with open_catalog(folder) as catalog:
        _, result = catalog.query("SELECT category, count(*) FROM samples GROUP BY 1")
    cold = time.perf_counter() - started
    assert sum(n for _, n in result) == rows
    with open_catalog(folder) as catalog:
        catalog.query("SELECT category, count(*) FROM samples GROUP BY 1")
        started = time.perf_counter()
        catalog.query("SELECT category, count(*) FROM samples GROUP BY 1")
        warm = time.perf_counter() - started
    return fill, cold, warm


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    console = Console()
    specs = synthetic_shards(args.preset)

    table = Table(title=f"Synthetic generation ({args.preset}), one core", title_justify="left")
    for c in ("source", "samples", "seconds", "samples/s"):
        table.add_column(c)
    for row in bench_generation(specs):
        table.add_row(*map(str, row))
    console.print(table)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        read = sum(stage_shard(s, tmp / "staging")["read"] for s in specs)
        stage_s = time.perf_counter() - started
        with open_catalog(tmp / "catalog", read_only=False) as catalog:
            result = commit_shards(catalog, tmp / "staging", specs, message="bench")
        kept = sum(a["kept"] for a in result.accounting)
        fill, cold, warm = bench_catalog_query(args.rows, tmp / "big")

    table = Table(title="Curation", title_justify="left")
    for c in ("step", "figure"):
        table.add_column(c)
    table.add_row(
        "generate + validate + stage (1 core)",
        f"{read} samples in {stage_s:.1f} s = {read / stage_s:.0f} samples/s",
    )
    table.add_row("dedup + decontaminate + commit", f"{kept} kept in {result.seconds:.1f} s")
    table.add_row("peak memory (RSS)", f"{peak_rss_mb():.0f} MB")
    table.add_row(f"catalog of {args.rows:,} rows: insert", f"{fill:.1f} s")
    table.add_row("category count, cold open + query", f"{cold * 1000:.0f} ms")
    table.add_row("category count, warm", f"{warm * 1000:.0f} ms")
    console.print(table)


if __name__ == "__main__":
    main()
