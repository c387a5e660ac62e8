"""Curation benchmark: synthetic generation, validation + staging, commit, a catalog query at 1M rows,
and staging one large jsonl-text file.

    python bench/curate.py [--preset tiny] [--rows 1000000] [--jsonl-lines 1000000]

Runs in one process on one core (the flow spreads shards over cores), so samples/s here is per core.
Peak memory is the process's maximum resident set size; the jsonl-text file is staged in a process of
its own, so its peak is that of staging it alone (0 lines skips it).
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from rich.console import Console
from rich.table import Table

from mm15.catalog import open_catalog
from mm15.catalog.commit import commit_shards
from mm15.catalog.plan import source_shards, synthetic_shards
from mm15.catalog.sources import source_config
from mm15.catalog.staging import stage_shard
from mm15.data.synthetic import generate


def peak_rss_mb() -> float:
    """This process's peak resident set size: VmHWM where Linux gives it (a spawned process's
    ru_maxrss starts at its parent's size at the fork)."""
    try:
        status = Path("/proc/self/status").read_text()
        return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1]) / 1024
    except (OSError, StopIteration):
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


def write_jsonl_text(path: Path, lines: int) -> None:
    """`lines` small text-only conversations ("What is 17 + 25?" / "42"), one JSON object a line."""
    with open(path, "w") as f:
        for i in range(lines):
            a, b = i * 7919 % 1000, i * 104729 % 1000
            f.write(
                f'{{"messages": [{{"role": "user", "content": "What is {a} + {b}?"}}, '
                f'{{"role": "assistant", "content": "{a + b}"}}]}}\n'
            )


def stage_jsonl_text(path: Path, staging: Path) -> tuple[int, int, float, float]:
    """Plan and stage the jsonl-text file at `path` as the library does (run in a fresh process):
    (records read, records kept, seconds, peak MB)."""
    started = time.perf_counter()
    source = source_config("bench", name="big", format="jsonl-text", path=str(path), category="text_only")
    stats = [stage_shard(spec, staging) for spec in source_shards(source)]
    seconds = time.perf_counter() - started
    return sum(s["read"] for s in stats), sum(s["valid"] for s in stats), seconds, peak_rss_mb()


def bench_jsonl_text(lines: int, folder: Path) -> tuple[int, int, float, float]:
    folder.mkdir()
    write_jsonl_text(folder / "big.jsonl", lines)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(stage_jsonl_text, folder / "big.jsonl", folder / "staging").result()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--jsonl-lines", type=int, default=1_000_000)
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
        if args.jsonl_lines:
            jsonl = bench_jsonl_text(args.jsonl_lines, tmp / "jsonl")

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
    if args.jsonl_lines:
        read, valid, seconds, peak = jsonl
        table.add_row(
            f"stage a jsonl-text file of {args.jsonl_lines:,} lines (1 core)",
            f"{read} records ({valid} kept) in {seconds:.1f} s = {read / seconds:.0f} records/s",
        )
        table.add_row("  its peak memory (RSS, own process)", f"{peak:.0f} MB")
    console.print(table)


if __name__ == "__main__":
    main()
