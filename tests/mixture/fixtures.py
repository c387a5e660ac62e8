"""What the mixture tests build on: a small catalog (a Parquet file with the catalog's columns and a
`samples` view over it), the shipped mixture specs and the recipe's shares."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from mm15.data.record import hash64

MIXTURES = Path(__file__).resolve().parents[2] / "catalogs" / "mixtures"
RECIPE_ALL = {  # docs/RECIPE.md section 4, in percent
    "text_rich": 37.2,
    "refer_ground": 22.5,
    "general": 11.3,
    "math": 5.6,
    "code": 2.3,
    "science": 1.1,
    "multi_image": 10.0,
    "text_only": 10.0,
}

SCHEMA = pa.schema(
    [
        pa.field("sample_id", pa.string()),
        pa.field("source", pa.string()),
        pa.field("category", pa.string()),
        pa.field("split", pa.string()),
        pa.field("n_images", pa.int32()),
        pa.field("hash64", pa.int64()),
        pa.field("task", pa.string()),
        pa.field("tier", pa.int8()),
        pa.field("messages", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
        pa.field("meta", pa.string()),
    ]
)

# (category, source) -> train rows: uneven sources, several per category, like a real catalog
REALISTIC = {
    ("general", "llava"): 900,
    ("general", "sharegpt4v"): 300,
    ("text_rich", "docvqa"): 1500,
    ("text_rich", "chartqa"): 900,
    ("text_rich", "ocrvqa"): 400,
    ("refer_ground", "grit"): 2000,
    ("science", "ai2d"): 150,
    ("math", "geomverse"): 400,
    ("math", "clevr_math"): 200,
    ("code", "websight"): 250,
    ("multi_image", "mantis"): 600,
    ("text_only", "openorca"): 700,
    ("caption", "coco"): 300,
    ("ocr", "pdfa"): 200,
    ("ocr", "idl"): 150,
    ("ocr", "renderedtext"): 100,
    ("ocr", "docstruct"): 50,
}


def write_catalog(path: Path, sizes: dict[tuple[str, str], int], eval_rows: int = 3) -> Path:
    """`sizes[(category, source)]` train rows plus `eval_rows` eval rows per source, rows interleaved."""
    rows = []
    for (category, source), n in sizes.items():
        for i in range(n + eval_rows):
            sid = hashlib.sha256(f"{category}/{source}/{i}".encode()).hexdigest()
            split = "train" if i < n else "eval"
            rows.append((sid, source, category, split, 1 + i % 3, hash64(sid), "qa", i % 2))
    rows.sort()  # storage order unrelated to (category, source)
    columns = list(zip(*rows, strict=True))
    table = pa.table(
        {
            **{name: columns[i] for i, name in enumerate(SCHEMA.names[:8])},
            "messages": [[{"role": "user", "content": "hi"}]] * len(rows),
            "meta": [json.dumps({"k": 1})] * len(rows),
        },
        schema=SCHEMA,
    )
    pq.write_table(table, path)
    return path


def connect(path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"CREATE VIEW samples AS SELECT * FROM read_parquet('{path}')")
    return con
