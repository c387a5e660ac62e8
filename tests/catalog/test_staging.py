"""Staging one shard: its key, the files it writes, and what a rerun or a crash leaves behind."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mm15.catalog import staging
from mm15.catalog.staging import (
    MARKER,
    STAGE_VERSION,
    ShardSpec,
    file_fingerprint,
    is_staged,
    read_stats,
    stage_records,
    stage_shard,
)
from mm15.data.record import Reason, Reject, Sample
from tests.fixtures_formats import EXPECTED_RECORDS, make_jsonl_text_source
from tests.images import png
from tests.lake import sample, staging_records

SPEC = ShardSpec(
    source="src",
    split="train",
    category="general",
    format="jsonl-text",
    path="/data/src/a.jsonl",
    root="/data/src",
    fingerprint="ab" * 32,
    start=40,
    count=20,
    seed=7,
    image_size=96,
)


def changed(value):
    """A different value of the same type."""
    if isinstance(value, int):
        return value + 1
    return value + "x"


def contents(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# ---- the shard key --------------------------------------------------------------------------------


def test_key_is_stable_and_names_source_and_split():
    again = ShardSpec(**dataclasses.asdict(SPEC))
    assert again is not SPEC and again.key == SPEC.key == SPEC.key
    assert re.fullmatch(r"src-train-[0-9a-f]{16}", SPEC.key)


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(ShardSpec)])
def test_key_changes_with_every_input_field(field):
    other = dataclasses.replace(SPEC, **{field: changed(getattr(SPEC, field))})
    assert other.key != SPEC.key


def test_one_field_changes_give_distinct_keys():
    keys = [
        dataclasses.replace(SPEC, **{f.name: changed(getattr(SPEC, f.name))}).key
        for f in dataclasses.fields(ShardSpec)
    ]
    assert len(set(keys + [SPEC.key])) == len(keys) + 1


def test_key_changes_with_the_stage_version(monkeypatch):
    before = SPEC.key
    monkeypatch.setattr(staging, "STAGE_VERSION", STAGE_VERSION + 1)
    bumped = SPEC.key
    assert bumped != before and bumped.startswith("src-train-")
    monkeypatch.undo()
    assert SPEC.key == before


# ---- file fingerprints ----------------------------------------------------------------------------


def test_file_fingerprint_is_the_sha256_of_the_whole_file(tmp_path):
    data = bytes(range(256)) * (10 * 2**12 + 3)  # 2.5 MiB: read in several blocks
    path = tmp_path / "shard.bin"
    path.write_bytes(data)
    assert file_fingerprint(path) == hashlib.sha256(data).hexdigest()
    path.write_bytes(data[:-1] + b"\x00")  # one byte differs, at the very end
    assert file_fingerprint(path) == hashlib.sha256(data[:-1] + b"\x00").hexdigest()
    assert file_fingerprint(path) != hashlib.sha256(data).hexdigest()
    path.write_bytes(b"")
    assert file_fingerprint(path) == hashlib.sha256(b"").hexdigest()


# ---- staging a shard ------------------------------------------------------------------------------


def test_stage_shard_writes_parquet_stats_and_marker(tmp_path, monkeypatch):
    monkeypatch.setattr(staging, "read_records", lambda spec: iter(staging_records()))
    assert not is_staged(tmp_path, SPEC)
    stats = stage_shard(SPEC, tmp_path)

    folder = tmp_path / SPEC.key
    assert sorted(p.name for p in tmp_path.iterdir()) == [SPEC.key]  # no temporary folder left
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["samples.parquet", "images.parquet", "rejects.parquet", "stats.json", MARKER]
    )
    assert is_staged(tmp_path, SPEC)
    assert (stats["read"], stats["valid"], stats["quarantined"]) == (5, 3, 2)
    assert stats["read"] == stats["valid"] + stats["quarantined"]
    assert (stats["shard"], stats["source"], stats["split"]) == (SPEC.key, "src", "train")
    assert json.loads((folder / "stats.json").read_text()) == stats == read_stats(tmp_path, SPEC)

    samples = pq.read_table(folder / "samples.parquet").to_pylist()
    assert [(s["key"], s["shard"], s["n_images"]) for s in samples] == [
        ("k0", SPEC.key, 1),
        ("k1", SPEC.key, 1),
        ("k2", SPEC.key, 1),
    ]
    assert samples[0]["messages"][1] == {"role": "assistant", "content": "An answer."}
    rejects = pq.read_table(folder / "rejects.parquet").to_pylist()
    assert [(r["key"], r["reason"], r["split"], r["shard"], r["sample_id"]) for r in rejects] == [
        ("k3", Reason.MALFORMED, "train", SPEC.key, None),
        ("k4", Reason.INVALID_JSON, "train", SPEC.key, None),
    ]
    assert "unknown split 'validation'" in rejects[0]["detail"]


def test_an_image_shared_by_two_samples_is_written_once(tmp_path):
    stage_records(SPEC, staging_records(), tmp_path)
    folder = tmp_path / SPEC.key
    images = pq.read_table(folder / "images.parquet").to_pylist()
    one, two = hashlib.sha256(png(1)).hexdigest(), hashlib.sha256(png(2)).hexdigest()
    assert [im["image_id"] for im in images] == [one, two]  # image 3's sample was quarantined
    assert images[0]["bytes"] == png(1) and (images[0]["width"], images[0]["height"]) == (96, 80)
    image_ids = {s["key"]: s["image_ids"] for s in pq.read_table(folder / "samples.parquet").to_pylist()}
    assert image_ids == {"k0": [one], "k1": [two], "k2": [one]}


def jsonl_spec(path, root, source: str, category: str) -> ShardSpec:
    """The shard of a whole jsonl-text file."""
    return ShardSpec(
        source=source,
        split="train",
        category=category,
        format="jsonl-text",
        path=str(path),
        root=str(root),
        fingerprint=file_fingerprint(path),
    )


def test_stage_shard_reads_a_real_source_file(tmp_path):
    """A jsonl-text shard through the adapter: every line read is a sample or a reject."""
    source = make_jsonl_text_source(tmp_path / "source", corrupt=True)
    (path,) = sorted(source.glob("*.jsonl"))
    spec = jsonl_spec(path, source, "fixture", "general")
    stats = stage_shard(spec, tmp_path / "staging")
    expected = EXPECTED_RECORDS["jsonl-text"][True]
    assert stats["valid"] == expected["samples"] == 3
    assert stats["quarantined"] == sum(expected["rejects"].values()) == 4
    assert stats["read"] == stats["valid"] + stats["quarantined"]
    rejects = pq.read_table(tmp_path / "staging" / spec.key / "rejects.parquet").to_pylist()
    assert sorted(r["reason"] for r in rejects) == sorted(
        reason for reason, n in expected["rejects"].items() for _ in range(n)
    )


def test_a_staged_shard_is_not_read_again(tmp_path, monkeypatch):
    produced = []

    def generate():
        for record in staging_records():
            produced.append(record.key)
            yield record

    first = stage_records(SPEC, generate(), tmp_path)
    assert produced == ["k0", "k1", "k2", "k3", "k4"]
    written = contents(tmp_path / SPEC.key)

    def refuse(spec):
        raise AssertionError(f"shard {spec.key} was read again")

    monkeypatch.setattr(staging, "read_records", refuse)
    assert stage_shard(SPEC, tmp_path) == first
    assert stage_shard(SPEC, tmp_path) == first
    assert contents(tmp_path / SPEC.key) == written  # untouched
    assert produced == ["k0", "k1", "k2", "k3", "k4"]


def test_a_folder_without_marker_is_restaged(tmp_path, monkeypatch):
    folder = tmp_path / SPEC.key
    folder.mkdir()
    (folder / "samples.parquet").write_bytes(b"half written")
    assert not is_staged(tmp_path, SPEC)
    monkeypatch.setattr(staging, "read_records", lambda spec: iter(staging_records()))
    stats = stage_shard(SPEC, tmp_path)
    assert stats["read"] == 5 and is_staged(tmp_path, SPEC)
    assert pq.read_table(folder / "samples.parquet").num_rows == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [SPEC.key]


# ---- failures leave nothing half written ----------------------------------------------------------


def test_a_failing_reader_leaves_no_shard_and_no_temporary_folder(tmp_path):
    def failing():
        yield from staging_records()[:3]
        raise OSError("the source went away")

    staging_dir = tmp_path / "staging"
    staging_dir.mkdir()
    with pytest.raises(OSError, match="the source went away"):
        stage_records(SPEC, failing(), staging_dir)
    assert list(staging_dir.iterdir()) == []
    assert not is_staged(staging_dir, SPEC)

    stats = stage_records(SPEC, staging_records(), staging_dir)  # a retry stages it whole
    assert stats["read"] == 5 and sorted(p.name for p in staging_dir.iterdir()) == [SPEC.key]


def test_a_failing_write_leaves_no_shard_and_no_temporary_folder(tmp_path, monkeypatch):
    real_write = pq.ParquetWriter.write_table
    written = []

    def write_then_fail(writer, table, *args, **kwargs):
        if written:  # the second batch: the first is in samples.parquet in the temporary folder
            raise OSError(errno.EIO, "Input/output error")
        written.append(Path(writer.where))
        return real_write(writer, table, *args, **kwargs)

    monkeypatch.setattr(staging, "BATCH_ROWS", 1)  # a write per row: it fails mid-stream
    monkeypatch.setattr(pq.ParquetWriter, "write_table", write_then_fail)
    staging_dir = tmp_path / "staging"
    with pytest.raises(OSError, match="Input/output error"):
        stage_records(SPEC, staging_records(), staging_dir)
    assert [p.name for p in written] == ["samples.parquet"]
    # it was written beside the shard's folder, under another name, and that folder is gone
    assert written[0].parent.parent == staging_dir and written[0].parent.name != SPEC.key
    assert list(staging_dir.iterdir()) == []
    assert not is_staged(staging_dir, SPEC)


# ---- rejects are the same on every run ------------------------------------------------------------


def corrupt_records() -> list[Sample | Reject]:
    """Samples whose images Pillow cannot read (its messages name the stream object and its memory
    address), and an adapter reject whose detail carries an address too."""
    return [
        sample("src", "k0", images=[b"not an image at all"]),
        sample("src", "k1", images=[png(1)[:60]]),  # truncated PNG
        sample("src", "k2", images=[b"\x89PNG\r\n\x1a\n" + bytes(40)]),  # a PNG signature, then nothing
        sample("src", "k3", image_seeds=(2,)),
        Reject("src", "k4", Reason.BAD_DOCUMENT, "cannot open PDF: <pdfium.PdfDocument at 0x7f0012345678>"),
    ]


def test_rejects_are_byte_identical_across_stagings_and_name_no_address(tmp_path):
    for folder in ("one", "two"):
        stage_records(SPEC, corrupt_records(), tmp_path / folder)
    one, two = (tmp_path / folder / SPEC.key / "rejects.parquet" for folder in ("one", "two"))
    rejects = pq.read_table(one).to_pylist()
    assert rejects == pq.read_table(two).to_pylist()
    assert one.read_bytes() == two.read_bytes()
    assert [(r["key"], r["reason"]) for r in rejects] == [
        ("k0", Reason.BAD_IMAGE),
        ("k1", Reason.BAD_IMAGE),
        ("k2", Reason.BAD_IMAGE),
        ("k4", Reason.BAD_DOCUMENT),
    ]
    for r in rejects:
        assert "0x" not in r["detail"], r
    assert rejects[0]["detail"].endswith("cannot identify image file <_io.BytesIO object>")
    assert rejects[3]["detail"] == "cannot open PDF: <pdfium.PdfDocument>"


# ---- streaming: rows are written in batches -------------------------------------------------------


def many_records(n: int) -> list[Sample | Reject]:
    """`n` records: text-only and image samples (images repeating), quarantined ones and rejects."""
    out: list[Sample | Reject] = []
    for i in range(n):
        if i % 7 == 3:
            out.append(Reject("src", f"k{i}", Reason.INVALID_JSON, f"line {i}: Expecting value"))
        elif i % 5 == 0:
            out.append(sample("src", f"k{i}", image_seeds=(i % 4,), text=f"What is {i}?"))
        elif i % 11 == 0:
            out.append(sample("src", f"k{i}", image_seeds=(), split="dev"))  # not a split: quarantined
        else:
            out.append(sample("src", f"k{i}", image_seeds=(), text=f"What is {i} + {i}?"))
    return out


TABLES = ("samples", "images", "rejects")


def staged_rows(folder) -> dict[str, list[dict]]:
    return {name: pq.read_table(folder / f"{name}.parquet").to_pylist() for name in TABLES}


def without_seconds(stats: dict) -> dict:
    return {k: v for k, v in stats.items() if k != "seconds"}


def test_small_batches_write_the_same_rows_as_one_batch(tmp_path, monkeypatch):
    whole = stage_records(SPEC, many_records(300), tmp_path / "whole")
    monkeypatch.setattr(staging, "BATCH_ROWS", 7)
    batched = stage_records(SPEC, many_records(300), tmp_path / "batched")
    assert without_seconds(batched) == without_seconds(whole)
    assert (whole["read"], whole["quarantined"]) == (300, 43 + 19)
    rows = staged_rows(tmp_path / "batched" / SPEC.key)
    assert rows == staged_rows(tmp_path / "whole" / SPEC.key)
    assert [len(rows[name]) for name in TABLES] == [238, 4, 62]
    groups = [
        pq.ParquetFile(tmp_path / "batched" / SPEC.key / f"{name}.parquet").num_row_groups for name in TABLES
    ]
    assert groups == [34, 1, 9]  # 238 / 7, 4 images, 62 / 7: one row group per batch
    assert pq.ParquetFile(tmp_path / "whole" / SPEC.key / "samples.parquet").num_row_groups == 1


def test_a_batch_of_images_ends_at_batch_bytes(tmp_path, monkeypatch):
    monkeypatch.setattr(staging, "BATCH_BYTES", len(png(1)) + 1)  # any two images pass it, no single one
    stage_records(SPEC, many_records(300), tmp_path)
    assert pq.ParquetFile(tmp_path / SPEC.key / "images.parquet").num_row_groups == 2  # 4 images


def test_a_jsonl_file_staged_in_small_batches_matches_one_batch(tmp_path, monkeypatch):
    lines = [
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": f"What is {i} + 25?"},
                    {"role": "assistant", "content": str(i + 25)},
                ]
            }
        )
        if i % 97
        else '{"messages": ['
        for i in range(3000)
    ]
    path = tmp_path / "big.jsonl"
    path.write_text("\n".join(lines) + "\n")
    spec = jsonl_spec(path, tmp_path, "big", "text_only")
    whole = stage_shard(spec, tmp_path / "whole")
    monkeypatch.setattr(staging, "BATCH_ROWS", 64)
    batched = stage_shard(spec, tmp_path / "batched")
    assert without_seconds(batched) == without_seconds(whole)
    assert (whole["read"], whole["valid"], whole["quarantined"], whole["unreadable"]) == (3000, 2969, 31, 31)
    rows = staged_rows(tmp_path / "batched" / spec.key)
    assert rows == staged_rows(tmp_path / "whole" / spec.key)
    assert [s["key"] for s in rows["samples"]][:3] == ["big.jsonl:2", "big.jsonl:3", "big.jsonl:4"]
    assert pq.ParquetFile(tmp_path / "batched" / spec.key / "samples.parquet").num_row_groups == 47


def test_rows_are_written_while_records_are_still_being_read(tmp_path, monkeypatch):
    """Memory does not grow with the shard: a batch is on disk before the next records are read."""
    monkeypatch.setattr(staging, "BATCH_ROWS", 10)
    sizes = []

    def watched():
        for i, record in enumerate(many_records(100)):
            if i % 25 == 0:
                (tmp,) = tmp_path.glob(f".{SPEC.key}.tmp-*")
                sizes.append((tmp / "samples.parquet").stat().st_size)
            yield record

    stage_records(SPEC, watched(), tmp_path)
    assert sizes[0] < sizes[1] < sizes[2] < sizes[3]
