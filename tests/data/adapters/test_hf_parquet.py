"""The hf-parquet adapter (the Cauldron's layout), end to end on small sources."""

from __future__ import annotations

import random

import pyarrow as pa
import pyarrow.parquet as pq

from mm15.data.record import Reason, Reject, Sample
from tests.data.adapters.helpers import by_key, user_assistant
from tests.fixtures_formats import CAULDRON_SCHEMA, image_bytes, read_source

# ---- end to end -----------------------------------------------------------------------------------


def test_hf_parquet_end_to_end(hf_parquet_source):
    samples = by_key(read_source("hf-parquet", hf_parquet_source))
    label = "data/train-00000-of-00001.parquet"
    assert list(samples) == [f"{label}:row {i}" for i in range(4)]
    bytes_only, two_turns, by_path, text_only = samples.values()
    assert bytes_only.messages == user_assistant("<image>\nWhat colour?", "Red.")
    assert bytes_only.images == [image_bytes((32, 24), "red")]
    assert bytes_only.meta == {"text_source": "fixture"} and bytes_only.task == "hf-parquet"
    assert two_turns.messages == user_assistant(
        "<image><image>Which is taller?", "The second.", "Its colour?", "Blue."
    )
    assert two_turns.images == [image_bytes((32, 24), "red"), image_bytes((24, 32), "blue", "JPEG")]
    assert by_path.images == [(hf_parquet_source / "images" / "page.png").read_bytes()]
    assert text_only.images == [] and text_only.messages == user_assistant("What is 3 + 4?", "7")


def test_hf_parquet_reads_in_bounded_batches(hf_parquet_source, monkeypatch):
    seen = []
    real = pq.ParquetFile.iter_batches

    def spy(self, *args, **kwargs):
        seen.append(kwargs.get("batch_size"))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", spy)
    assert len(read_source("hf-parquet", hf_parquet_source)) == 4
    assert seen and all(size is not None and size <= 64 for size in seen)


# ---- broken files and limits ----------------------------------------------------------------------


def test_a_corrupt_row_group_loses_only_its_own_rows(tmp_path):
    row = {"images": [], "texts": [{"user": "Q", "assistant": "A", "source": "s"}]}
    path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist([row] * 9, schema=CAULDRON_SCHEMA), path, row_group_size=3)
    middle = pq.ParquetFile(path).metadata.row_group(1).column(0).data_page_offset
    data = bytearray(path.read_bytes())
    data[middle : middle + 40] = b"\xff" * 40  # the page header of row group 1
    path.write_bytes(bytes(data))
    records = read_source("hf-parquet", tmp_path)
    assert [r.key for r in records] == [f"d.parquet:row {i}" for i in range(9)]
    assert [isinstance(r, Sample) for r in records] == [True] * 3 + [False] * 3 + [True] * 3
    assert records[4].reason == Reason.MALFORMED and "row group 1 is unreadable" in records[4].detail


def test_hf_parquet_image_bytes_over_the_limit_are_rejected(hf_parquet_source):
    records = read_source("hf-parquet", hf_parquet_source, max_file_bytes=200)
    reasons = [r.reason if isinstance(r, Reject) else "sample" for r in records]
    assert reasons == [  # the JPEG (~850 bytes) is over 200; the PNGs (~120 bytes) are not
        "sample",
        Reason.IMAGE_TOO_LARGE,
        "sample",
        "sample",
    ]


# ---- robustness: never raise on bad input ---------------------------------------------------------


def test_mutated_cauldron_rows_each_become_one_record(tmp_path):
    rng = random.Random(2)
    png = image_bytes((8, 8), "red")
    rows = []
    for _ in range(80):
        row = {
            "images": [{"bytes": png, "path": None}],
            "texts": [{"user": "Q", "assistant": "A", "source": "s"}],
        }
        choice = rng.randrange(5)
        if choice == 0:
            row["images"] = None
        elif choice == 1:
            row["texts"] = None
        elif choice == 2:
            row["images"] = [None]
        elif choice == 3:
            row["texts"] = [{"user": None, "assistant": None, "source": None}]
        rows.append(row)
    pq.write_table(
        pa.Table.from_pylist(rows, schema=CAULDRON_SCHEMA), tmp_path / "d.parquet", row_group_size=7
    )
    records = read_source("hf-parquet", tmp_path)
    assert [r.key for r in records] == [f"d.parquet:row {i}" for i in range(80)]
