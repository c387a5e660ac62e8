"""The row dataclasses that validation produces and the Arrow schemas the catalog stores agree."""

from __future__ import annotations

from dataclasses import asdict, fields

import pyarrow as pa

from mm15.catalog import schema
from mm15.data.record import Reject
from mm15.data.synthetic import generate
from mm15.data.validate import ImageRow, SampleRow, Validated, validate

# Columns the stager adds to each row: which shard it came from (and, for rejects, where it stood).
STAGED_SAMPLE_COLUMNS = {"shard"}
STAGED_REJECT_COLUMNS = {"split", "sample_id", "shard"}


def names(row_class) -> list[str]:
    return [f.name for f in fields(row_class)]


def test_row_fields_are_the_schema_columns():
    assert set(names(SampleRow)) | STAGED_SAMPLE_COLUMNS == set(schema.SAMPLES.names)
    assert names(ImageRow) == schema.IMAGES.names
    assert set(names(Reject)) | STAGED_REJECT_COLUMNS == set(schema.REJECTS.names)


def test_validated_rows_convert_to_the_schema_losslessly():
    samples = list(generate("syn_refer_ground", "train", 0, 3, seed=1, image_size=96))
    validated = [validate(s) for s in samples]
    assert all(isinstance(v, Validated) for v in validated)
    rows = [{**asdict(v.sample), "shard": "s"} for v in validated]
    table = pa.Table.from_pylist(rows, schema=schema.SAMPLES)
    back = table.to_pylist()
    for row, stored in zip(rows, back, strict=True):
        boxes = stored.pop("boxes")
        assert boxes == [{k: (int(v) if k == "image" else v) for k, v in b.items()} for b in row.pop("boxes")]
        assert stored == {k: row[k] for k in stored}
    images = pa.Table.from_pylist([asdict(i) for v in validated for i in v.images], schema=schema.IMAGES)
    assert images.column("image_id").to_pylist() == [i.image_id for v in validated for i in v.images]


def test_accounting_columns_are_the_ingests_counts():
    assert set(schema.ACCOUNTING_COLUMNS) < set(schema.INGESTS.names)
