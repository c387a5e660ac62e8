"""What every format adapter shares: listing shards, the formats, accounting, rejects, robustness."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from mm15.data.adapters import FORMATS, list_shards, read_shard
from mm15.data.record import Reason
from tests.data.adapters.helpers import by_key, mutation, split
from tests.fixtures_formats import EXPECTED_RECORDS, image_bytes, read_source

# ---- listing shards -------------------------------------------------------------------------------


def test_list_shards_finds_the_format_files_recursively_and_sorted(tmp_path):
    for name in ["b.jsonl", "a/c.json", "a/z.jsonl", "img.png", "notes.txt", ".cache/x.json", "._d.json"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("[]")
    assert list_shards("llava", tmp_path) == [
        tmp_path / "a/c.json",
        tmp_path / "a/z.jsonl",
        tmp_path / "b.jsonl",
    ]
    assert list_shards("jsonl-text", tmp_path) == [tmp_path / "a/z.jsonl", tmp_path / "b.jsonl"]
    assert list_shards("llava", tmp_path / "b.jsonl") == [tmp_path / "b.jsonl"]


@pytest.mark.parametrize(
    ("fmt", "name", "message"),
    [
        ("csv", "b.jsonl", "unknown format 'csv'"),
        ("hf-parquet", "", "no .parquet files"),
        ("wds-ocr", "b.jsonl", "is not a wds-ocr file"),
        ("llava", "missing", "does not exist"),
    ],
)
def test_list_shards_refuses_with_one_line(tmp_path, fmt, name, message):
    (tmp_path / "b.jsonl").write_text("")
    with pytest.raises(ValueError, match=message) as raised:
        list_shards(fmt, tmp_path / name)
    assert "\n" not in str(raised.value)


def test_formats_are_the_public_four():
    assert FORMATS == ("llava", "hf-parquet", "wds-ocr", "jsonl-text")
    with pytest.raises(ValueError, match="unknown format"):
        read_shard("csv", Path("x"), Path("."), source="s", category="general", split="train")


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_missing_shard_raises_oserror_for_the_caller_to_retry(tmp_path, fmt):
    shard = tmp_path / {"hf-parquet": "a.parquet", "wds-ocr": "a.tar"}.get(fmt, "a.jsonl")
    with pytest.raises(OSError):
        list(read_shard(fmt, shard, tmp_path, source="s", category="general", split="train"))


# ---- accounting and rejects -----------------------------------------------------------------------


@pytest.mark.parametrize("corrupt", [False, True])
@pytest.mark.parametrize("fmt", FORMATS)
def test_rows_read_equal_samples_plus_rejects(build_source, fmt, corrupt):
    records = read_source(fmt, build_source(fmt, corrupt))
    samples, rejects = split(records)
    expected = EXPECTED_RECORDS[fmt][corrupt]
    assert len(samples) == expected["samples"]
    assert Counter(r.reason for r in rejects) == Counter(expected["rejects"])
    by_key(records)  # every record, kept or not, has its own key
    assert all(r.source == "fixture" and r.detail and "\n" not in r.detail for r in rejects)


CORRUPT_LLAVA = {
    "data.json:#4 id=c-conversations": (Reason.MALFORMED, "'conversations' must be a list"),
    "data.json:#5 id=c-role": (Reason.MALFORMED, "unknown role 'bot'"),
    "data.json:#6 id=c-dotdot": (Reason.PATH_ESCAPE, "../outside/secret.png"),
    "data.json:#7 id=c-symlink": (Reason.PATH_ESCAPE, "images/link.png"),
    "data.json:#8 id=c-absolute": (Reason.PATH_ESCAPE, "absolute image path"),
    "data.json:#9 id=c-missing": (Reason.MISSING_FILE, "images/nope.png"),
    "data.json:#10 id=c-huge": (Reason.IMAGE_TOO_LARGE, "67108865 bytes"),
    "sub/more.jsonl:3": (Reason.INVALID_JSON, "Expecting value at column"),
    "sub/more.jsonl:4": (Reason.INVALID_UTF8, "can't decode byte 0xff"),
    "sub/more.jsonl:5": (Reason.MALFORMED, "must be an object, got array"),
    "broken.json": (Reason.INVALID_JSON, "Expecting value"),
}


CORRUPT_HF_PARQUET = {
    "data/broken.parquet": (Reason.MALFORMED, "not a readable Parquet file"),
    "data/other-layout.parquet": (Reason.MALFORMED, "no 'images' column"),
    "data/train-00000-of-00001.parquet:row 4": (Reason.MALFORMED, "texts[0] needs string 'user'"),
    "data/train-00000-of-00001.parquet:row 5": (Reason.MALFORMED, "neither bytes nor path"),
    "data/train-00000-of-00001.parquet:row 6": (Reason.PATH_ESCAPE, "outside the source folder"),
    "data/train-00000-of-00001.parquet:row 7": (Reason.MISSING_FILE, "does not exist"),
}


CORRUPT_WDS_OCR = {
    "shard-000001.tar:nojson": (Reason.MALFORMED, "no .json member"),
    "shard-000001.tar:badjson": (Reason.INVALID_JSON, "Expecting value"),
    "shard-000001.tar:badpdf": (Reason.BAD_DOCUMENT, "cannot open PDF"),
    "shard-000001.tar:short/p1": (Reason.MALFORMED, "page 1 is beyond"),
    "shard-000001.tar:../evil": (Reason.PATH_ESCAPE, "'../evil.json' leaves the archive"),
}


CORRUPT_JSONL_TEXT = {
    "chat.jsonl:5": (Reason.INVALID_JSON, "Expecting value"),
    "chat.jsonl:6": (Reason.INVALID_UTF8, "can't decode byte 0xc3"),
    "chat.jsonl:7": (Reason.MALFORMED, "no 'messages'"),
    "chat.jsonl:8": (Reason.MALFORMED, "unknown role 'bot'"),
}


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("llava", CORRUPT_LLAVA),
        ("hf-parquet", CORRUPT_HF_PARQUET),
        ("wds-ocr", CORRUPT_WDS_OCR),
        ("jsonl-text", CORRUPT_JSONL_TEXT),
    ],
)
def test_each_corrupt_record_is_rejected_with_its_key_reason_and_detail(build_source, fmt, expected):
    _, rejects = split(read_source(fmt, build_source(fmt, corrupt=True)))
    found = {r.key: (r.reason, r.detail) for r in rejects}
    assert set(found) == set(expected)
    for key, (reason, fragment) in expected.items():
        assert found[key][0] == reason, key
        assert fragment in found[key][1], (key, found[key][1])


# ---- robustness: never raise on bad input ---------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "valid"),
    [
        ("llava", {"id": "a", "image": "i.png", "conversations": [{"from": "human", "value": "<image>\nQ"}]}),
        (
            "jsonl-text",
            {
                "id": "a",
                "messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}],
            },
        ),
    ],
)
def test_mutated_json_records_each_become_one_record(tmp_path, fmt, valid):
    (tmp_path / "i.png").write_bytes(image_bytes((8, 8), "red"))
    rng = random.Random(0)
    lines = [json.dumps(mutation(rng, valid)) for _ in range(300)]
    (tmp_path / "d.jsonl").write_text("\n".join(lines) + "\n")
    records = read_source(fmt, tmp_path)
    assert len(records) == len(lines) == len(by_key(records))
    samples, rejects = split(records)
    assert (
        samples
        and rejects
        and {r.reason for r in rejects}
        <= {Reason.MALFORMED, Reason.PATH_ESCAPE, Reason.MISSING_FILE, Reason.INVALID_UTF8}
    )
    for record in records:
        (record.key + getattr(record, "detail", "")).encode("utf-8")  # keys and details are writable


@pytest.mark.parametrize(
    ("line", "fragment"),
    [(b"[" * 100_000, "nested too deeply"), (b'{"id": ' + b"1" * 5000 + b"}", "digits")],
)
def test_pathological_json_is_invalid_json(tmp_path, line, fragment):
    (tmp_path / "d.jsonl").write_bytes(line + b"\n")
    for fmt in ["llava", "jsonl-text"]:
        (reject,) = read_source(fmt, tmp_path)
        assert reject.reason == Reason.INVALID_JSON and fragment in reject.detail
