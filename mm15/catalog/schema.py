"""Explicit Arrow schemas of what curation writes (inference from a first batch breaks on nulls)."""

import pyarrow as pa

MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
BOX = pa.struct(
    [
        ("image", pa.int32()),
        ("x1", pa.float32()),
        ("y1", pa.float32()),
        ("x2", pa.float32()),
        ("y2", pa.float32()),
    ]
)

# Light columns only: mixture queries scan this table and never touch image bytes.
SAMPLES = pa.schema(
    [
        ("sample_id", pa.string()),
        ("hash64", pa.int64()),
        ("source", pa.string()),
        ("key", pa.string()),
        ("category", pa.string()),
        ("split", pa.string()),
        ("task", pa.string()),
        ("tier", pa.int8()),
        ("n_images", pa.int32()),
        ("image_ids", pa.list_(pa.string())),
        ("messages", pa.list_(MESSAGE)),
        ("boxes", pa.list_(BOX)),
        ("meta", pa.string()),
        ("text_chars", pa.int32()),
        ("shard", pa.string()),
    ]
)

# One row per distinct image, keyed by the sha256 of its encoded bytes.
IMAGES = pa.schema(
    [
        ("image_id", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("format", pa.string()),
        ("phash", pa.list_(pa.int64())),  # 256-bit perceptual hash, 4 words
        ("bytes", pa.binary()),
    ]
)

REJECTS = pa.schema(
    [
        ("source", pa.string()),
        ("split", pa.string()),
        ("key", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("sample_id", pa.string()),
        ("shard", pa.string()),
    ]
)

# The row counts of the accounting, in the order reports show them. Per source and split of a commit,
# read = kept + quarantined + duplicates + contaminated; evicted counts catalog rows removed by it.
ACCOUNTING_COLUMNS = ("read", "kept", "quarantined", "duplicates", "contaminated", "evicted")

# Accounting, one row per source and split per commit.
INGESTS = pa.schema(
    [
        ("commit_id", pa.string()),
        ("source", pa.string()),
        ("split", pa.string()),
        ("shards", pa.int32()),
        *((column, pa.int64()) for column in ACCOUNTING_COLUMNS),
    ]
)

# Every staged shard that has been committed, so reruns skip it.
SHARDS = pa.schema(
    [
        ("shard", pa.string()),
        ("source", pa.string()),
        ("commit_id", pa.string()),
        ("read", pa.int64()),
    ]
)

TABLES = {"samples": SAMPLES, "images": IMAGES, "rejects": REJECTS, "ingests": INGESTS, "shards": SHARDS}
