"""Benchmark: build a mixture manifest over a generated metadata-only catalog; time and peak memory.

    python bench/mixture.py                      # 10M catalog rows, 1M manifest samples, 2 threads
    python bench/mixture.py --rows 1000000 --samples 100000

The catalog (10 categories, 30 sources of uneven sizes, 5% eval rows, random sha256 sample ids) is
generated into a temporary folder first, untimed. Each build then runs in a fresh child process
pinned to `--threads` cores, so its peak RSS (ru_maxrss) is the build's own, imports included.
Targets: under 30 s and under 2 GB on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mm15.data.record import CATEGORIES

ROOT = Path(__file__).resolve().parents[1]
OCR_SOURCES = ("pdfa", "idl", "renderedtext", "docstruct")
SCHEMA = pa.schema(
    [
        ("sample_id", pa.string()),
        ("source", pa.string()),
        ("category", pa.string()),
        ("split", pa.string()),
        ("n_images", pa.int32()),
        ("hash64", pa.int64()),
        ("task", pa.string()),
        ("tier", pa.int8()),
    ]
)
TARGET_S, TARGET_MB = 30.0, 2048.0


def sources() -> list[tuple[str, str, float]]:
    """30 (category, source, weight): the 4 OCR sources, 2 caption sources, 3 for each other category."""
    rng = np.random.default_rng(0)
    out = []
    for category in CATEGORIES:
        count = {"ocr": 4, "caption": 2}.get(category, 3)
        names = OCR_SOURCES if category == "ocr" else [f"{category}_{i}" for i in range(count)]
        out += [(category, name, float(rng.uniform(0.2, 1.0))) for name in names]
    return out


def generate(path: Path, rows: int, chunk: int = 1_000_000) -> None:
    """Write `rows` catalog rows to `path` (Parquet, explicit schema), chunk by chunk."""
    rng = np.random.default_rng(1)
    table = sources()
    weights = np.array([w for _, _, w in table])
    cats = pa.array([c for c, _, _ in table], pa.string())
    srcs = pa.array([s for _, s, _ in table], pa.string())
    hexdigits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    with pq.ParquetWriter(path, SCHEMA, compression="zstd") as writer:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            digest = np.frombuffer(rng.bytes(32 * n), dtype=np.uint8).reshape(n, 32)
            hexed = np.stack([hexdigits[digest >> 4], hexdigits[digest & 15]], axis=2).reshape(-1)
            offsets = np.arange(0, 64 * (n + 1), 64, dtype=np.int32)
            sample_id = pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(hexed.tobytes()))
            which = pa.array(rng.choice(len(table), n, p=weights / weights.sum()).astype(np.int32))
            split = np.where(rng.random(n) < 0.95, "train", "eval")
            batch = pa.table(
                {
                    "sample_id": sample_id,
                    "source": srcs.take(which),
                    "category": cats.take(which),
                    "split": pa.array(split, pa.string()),
                    "n_images": pa.array(rng.integers(0, 4, n, dtype=np.int32)),
                    "hash64": pa.array(digest[:, :8].copy().view(">i8").ravel().astype(np.int64)),
                    "task": pa.array(np.full(n, "qa"), pa.string()),
                    "tier": pa.array(rng.integers(0, 3, n, dtype=np.int8)),
                },
                schema=SCHEMA,
            )
            writer.write_table(batch, row_group_size=chunk)


def build_once(catalog: Path, mixture: str, samples: int, threads: int, out: Path) -> dict:
    """In this (fresh) process: time one build_manifest; return seconds and peak RSS."""
    if hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))[:threads]
        os.sched_setaffinity(0, cores)
    import duckdb

    from mm15.mixture.build import build_manifest
    from mm15.mixture.spec import load_spec

    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.execute(f"CREATE VIEW samples AS SELECT * FROM read_parquet('{catalog}')")
    spec = load_spec(mixture, ROOT / "catalogs" / "mixtures")
    start = time.perf_counter()
    summary = build_manifest(con, spec, samples=samples, seed=0, snapshot=1, out=out)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_mb": peak_mb, "hash": summary.manifest_hash[:12]}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mixtures", default="all,cpt")
    parser.add_argument("--child", nargs=2, metavar=("CATALOG", "MIXTURE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.child:
            result = build_once(
                Path(args.child[0]), args.child[1], args.samples, args.threads, Path(tmp) / "m.parquet"
            )
            print(json.dumps(result))
            return
        catalog = Path(tmp) / "catalog.parquet"
        start = time.perf_counter()
        generate(catalog, args.rows)
        print(f"generated {args.rows:,} rows in {time.perf_counter() - start:.1f} s (untimed)\n", flush=True)
        print(
            "| mixture | catalog rows | samples | threads | build s | peak RSS MB | within targets | manifest hash |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for mixture in args.mixtures.split(","):
            command = [sys.executable, __file__, "--child", str(catalog), mixture]
            command += ["--samples", str(args.samples), "--threads", str(args.threads)]
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            r = json.loads(
                subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
            )
            ok = "yes" if r["seconds"] < TARGET_S and r["peak_mb"] < TARGET_MB else "NO"
            print(
                f"| {mixture} | {args.rows:,} | {args.samples:,} | {args.threads} "
                f"| {r['seconds']:.1f} | {r['peak_mb']:.0f} | {ok} | {r['hash']} |"
            )


if __name__ == "__main__":
    main()
