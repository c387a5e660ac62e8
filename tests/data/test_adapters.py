"""The format adapters, end to end on small real sources (see tests/fixtures_formats.py)."""

from __future__ import annotations

import io
import json
import os
import random
import tarfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from mm15.data.adapters import FORMATS, image_files, list_shards, read_shard
from mm15.data.adapters.origin import ShardOrigin
from mm15.data.adapters.reading_order import reading_order
from mm15.data.adapters.wds_ocr import PROMPTS, read_wds_ocr
from mm15.data.record import IMAGE_TOKEN, Box, Reason, Reject, Sample
from tests.fixtures_formats import (
    CAULDRON_SCHEMA,
    EXPECTED_RECORDS,
    image_bytes,
    ocr_json,
    pdf_bytes,
    read_source,
    write_tar,
)


def split(records: list) -> tuple[list[Sample], list[Reject]]:
    return [r for r in records if isinstance(r, Sample)], [r for r in records if isinstance(r, Reject)]


def by_key(records) -> dict:
    records = list(records)
    keyed = {r.key: r for r in records}
    assert len(keyed) == len(records), "keys must tell records apart"
    return keyed


def corners(boxes: list[Box]) -> list[tuple]:
    return [(box.image, box.x1, box.y1, box.x2, box.y2) for box in boxes]


def user_assistant(*pairs: str) -> list[dict[str, str]]:
    roles = ["user", "assistant"] * len(pairs)
    return [{"role": role, "content": text} for role, text in zip(roles, pairs, strict=False)]


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


# ---- each format end to end -----------------------------------------------------------------------


def test_llava_end_to_end(llava_source):
    records = read_shard(
        "llava", llava_source / "data.json", llava_source, source="s", category="general", split="eval"
    )
    samples = by_key(records)
    assert list(samples) == [
        "data.json:#0 id=a0",
        "data.json:#1 id=a1",
        "data.json:#2 id=a2",
        "data.json:#3 id=a3",
    ]
    red, blue, green = (
        (llava_source / "images" / name).read_bytes() for name in ["red.png", "blue.jpg", "green.png"]
    )
    first, second, text_only, two = samples.values()
    assert first.messages == user_assistant("<image>\nWhat colour is the square?", "Red.")
    assert first.images == [red] and first.meta == {"id": "a0"}
    assert (first.source, first.category, first.split, first.task) == ("s", "general", "eval", "llava")
    assert second.messages[0]["content"] == "<image>\nWhat colour is the square?"  # marker prepended
    assert second.images == [blue]
    assert [m["role"] for m in text_only.messages] == [
        "system",
        "user",
        "assistant",
    ] and text_only.images == []
    assert two.images == [red, green] and two.messages[0]["content"].count(IMAGE_TOKEN) == 2


def test_llava_jsonl_resolves_images_from_its_own_folder(llava_source):
    shard = llava_source / "sub" / "more.jsonl"
    samples = by_key(read_shard("llava", shard, llava_source, source="s", category="general", split="train"))
    assert list(samples) == ["sub/more.jsonl:1 id=b0", "sub/more.jsonl:2 id=b1"]
    assert samples["sub/more.jsonl:1 id=b0"].images == [(llava_source / "images" / "green.png").read_bytes()]


def test_a_relative_source_path_gives_the_same_keys(llava_source, monkeypatch):
    monkeypatch.chdir(llava_source.parent)
    keys = [record.key for record in read_source("llava", Path("llava"))]
    assert keys == [record.key for record in read_source("llava", llava_source)]
    assert keys[0] == "data.json:#0 id=a0" and len(keys) == 6


def test_jsonl_with_a_byte_order_mark_and_crlf_line_ends_is_read(tmp_path):
    line = json.dumps({"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]})
    (tmp_path / "c.jsonl").write_bytes(("\ufeff" + line + "\r\n\r\n" + line + "\r\n").encode())
    first, second = read_source("jsonl-text", tmp_path)
    assert (first.key, second.key) == ("c.jsonl:1", "c.jsonl:3")
    assert first.messages == second.messages == user_assistant("Q", "A")


def test_a_lone_surrogate_is_invalid_utf8_with_a_writable_key(tmp_path):
    record = {
        "id": "x\ud800",
        "conversations": [{"from": "human", "value": "\udc00"}, {"from": "gpt", "value": "A"}],
    }
    (tmp_path / "d.jsonl").write_text(json.dumps(record) + "\n")  # json escapes it as \\ud800
    (reject,) = read_source("llava", tmp_path)
    assert reject.reason == Reason.INVALID_UTF8
    assert reject.key.encode("utf-8") == b"d.jsonl:1 id=x\\ud800"


def test_llava_markers_go_to_the_first_user_turn_one_per_image(tmp_path):
    for name in ["a.png", "b.png"]:
        (tmp_path / name).write_bytes(image_bytes((8, 8), "red"))
    turns = [
        {"from": "system", "value": "Sys."},
        {"from": "human", "value": "Same?"},
        {"from": "gpt", "value": "No."},
    ]
    mismatched = [{"from": "human", "value": "<image> one marker"}, {"from": "gpt", "value": "x"}]
    records = [
        {"image": ["a.png", "b.png"], "conversations": turns},
        {"image": "a.png", "conversations": mismatched},
    ]
    (tmp_path / "d.json").write_text(json.dumps(records))
    first, second = read_source("llava", tmp_path / "d.json")
    assert first.messages[0] == {"role": "system", "content": "Sys."}
    assert first.messages[1] == {"role": "user", "content": "<image>\n<image>\nSame?"}
    assert first.key == "d.json:#0" and first.meta == {}
    assert second.messages[0]["content"] == "<image> one marker"  # a marker exists: left for the validator


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


def test_wds_ocr_end_to_end(wds_ocr_source):
    samples = by_key(read_source("wds-ocr", wds_ocr_source))
    assert list(samples) == [
        "shard-000000.tar:doc0/p0",
        "shard-000000.tar:doc0/p1",
        "shard-000000.tar:scan1/p0",
    ]
    page0, page1, scan = samples.values()
    assert page0.task == "wds-ocr"
    assert page0.messages[0]["content"] in {f"{IMAGE_TOKEN}\n{prompt}" for prompt in PROMPTS}
    # "Total" sits a little higher than "Invoice" but on the same row: left to right wins
    assert page0.messages[1] == {"role": "assistant", "content": "Invoice Total\nPaid in full"}
    assert page0.meta == {"document": "doc0", "page": 0, "lines": ["Invoice", "Total", "Paid in full"]}
    image = Image.open(io.BytesIO(page0.images[0]))
    assert image.format == "PNG" and image.size == (1344, 672)  # 80 x 40 points, long side 1344
    assert corners(page0.boxes)[0] == pytest.approx((0, 0.1 * 1344, 0.12 * 672, 0.4 * 1344, 0.22 * 672))
    assert len(page0.boxes) == 3
    assert Image.open(io.BytesIO(page1.images[0])).size == (896, 1344)
    assert page1.messages[1]["content"] == "Page two"
    assert scan.images == [image_bytes((64, 48), "gray")]  # a PNG that fits is kept as is
    assert corners(scan.boxes) == [
        pytest.approx((0, 6.4, 4.8, 32.0, 14.4)),
        pytest.approx((0, 6.4, 24.0, 32.0, 33.6)),
    ]
    assert scan.messages[1]["content"] == "Hello\nWorld"


def test_wds_ocr_rendered_page_shows_the_pdf_content(wds_ocr_source):
    page0 = read_source("wds-ocr", wds_ocr_source)[0]
    image = Image.open(io.BytesIO(page0.images[0])).convert("L")
    width, height = image.size
    # the fixture draws a black bar from (w/10, h/10) to (w/2, h/5) on a white page
    assert image.getpixel((int(width * 0.3), int(height * 0.15))) < 64
    assert image.getpixel((int(width * 0.8), int(height * 0.8))) > 192


def read_wds(shard: Path, root: Path, max_file_bytes: int = 2**20, **options) -> list:
    """read_wds_ocr with its options (read_shard keeps the defaults)."""
    origin = ShardOrigin.of(shard, root, source="s", category="ocr", split="train", task="wds-ocr")
    return list(read_wds_ocr(shard, root, origin, max_file_bytes, **options))


def test_wds_ocr_max_side_bounds_pdf_pages_and_downscales_big_images(tmp_path):
    tiff = io.BytesIO()
    Image.new("RGB", (100, 50), "white").save(tiff, "TIFF")
    one_line = ocr_json([[("Line", [0.0, 0.0, 1.0, 0.5])]])
    members = [("doc.pdf", pdf_bytes([(80, 40)])), ("doc.json", one_line)]
    members += [("tif.tiff", tiff.getvalue()), ("tif.json", one_line)]
    pdf_page, tif_page = read_wds(write_tar(tmp_path / "s.tar", members), tmp_path, max_side=40)
    assert Image.open(io.BytesIO(pdf_page.images[0])).size == (40, 20)
    converted = Image.open(io.BytesIO(tif_page.images[0]))
    assert converted.format == "PNG" and converted.size == (40, 20)  # TIFF re-encoded, downscaled
    assert corners(tif_page.boxes) == [pytest.approx((0, 0, 0, 40, 10))]


def test_wds_ocr_prompt_is_chosen_by_key_and_varies(tmp_path):
    one_line = ocr_json([[("Line", [0.1, 0.1, 0.5, 0.1])]])
    page = image_bytes((16, 16), "red")
    members = [member for i in range(20) for member in [(f"d{i}.png", page), (f"d{i}.json", one_line)]]
    write_tar(tmp_path / "s.tar", members)
    prompts = [sample.messages[0]["content"] for sample in read_source("wds-ocr", tmp_path)]
    assert len(prompts) == 20 and set(prompts) <= {f"{IMAGE_TOKEN}\n{prompt}" for prompt in PROMPTS}
    assert len(set(prompts)) > 1
    assert prompts == [sample.messages[0]["content"] for sample in read_source("wds-ocr", tmp_path)]


def test_jsonl_text_end_to_end(jsonl_text_source):
    samples = by_key(read_source("jsonl-text", jsonl_text_source))
    assert list(samples) == ["chat.jsonl:1", "chat.jsonl:2", "chat.jsonl:3"]
    assert samples["chat.jsonl:1"].messages == user_assistant("Name a prime.", "7")
    assert samples["chat.jsonl:2"].messages[0] == {"role": "system", "content": "Be brief."}
    assert all(s.images == [] and s.task == "jsonl-text" for s in samples.values())


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


def test_corrupt_wds_box_outside_the_page_comes_out_outside_the_image(corrupt_wds_ocr_source):
    samples = by_key(split(read_source("wds-ocr", corrupt_wds_ocr_source))[0])
    outside = samples["shard-000001.tar:outside/p0"]
    width, _ = Image.open(io.BytesIO(outside.images[0])).size
    assert outside.boxes[0].x1 == pytest.approx(1.2 * width) and outside.boxes[0].x1 > width  # not clipped
    assert "shard-000001.tar:short/p0" in samples  # the page the PDF has is kept


def test_a_symlink_that_stays_inside_the_source_is_followed(tmp_path):
    (tmp_path / "real.png").write_bytes(image_bytes((8, 8), "red"))
    os.symlink("real.png", tmp_path / "alias.png")
    (tmp_path / "d.jsonl").write_text(json.dumps({"image": "alias.png", "conversations": []}) + "\n")
    (sample,) = read_source("llava", tmp_path)
    assert isinstance(sample, Sample) and sample.images == [image_bytes((8, 8), "red")]


def test_an_image_over_the_limit_is_rejected_without_being_read(tmp_path, monkeypatch):
    (tmp_path / "small.png").write_bytes(b"x" * 10)
    (tmp_path / "big.png").write_bytes(b"x" * 11)
    lines = [{"id": name, "image": f"{name}.png", "conversations": []} for name in ["small", "big"]]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(line) for line in lines))

    def refuse(*args, **kwargs):
        raise PermissionError(13, "reading is not allowed in this test")

    monkeypatch.setattr(image_files, "open", refuse, raising=False)
    small, big = read_source("llava", tmp_path, max_file_bytes=10)
    assert (small.reason, big.reason) == (
        Reason.MISSING_FILE,
        Reason.IMAGE_TOO_LARGE,
    )  # only small was opened
    assert "11 bytes, over the 10 limit" in big.detail
    monkeypatch.undo()
    small, big = read_source("llava", tmp_path, max_file_bytes=10)
    assert isinstance(small, Sample) and small.images == [b"x" * 10] and big.reason == Reason.IMAGE_TOO_LARGE


def test_hf_parquet_image_bytes_over_the_limit_are_rejected(hf_parquet_source):
    records = read_source("hf-parquet", hf_parquet_source, max_file_bytes=200)
    reasons = [r.reason if isinstance(r, Reject) else "sample" for r in records]
    assert reasons == [  # the JPEG (~850 bytes) is over 200; the PNGs (~120 bytes) are not
        "sample",
        Reason.IMAGE_TOO_LARGE,
        "sample",
        "sample",
    ]


def test_wds_member_over_the_limit_is_rejected_without_being_read(tmp_path):
    shard = write_tar(
        tmp_path / "s.tar",
        [("big.pdf", b"%PDF" + b"0" * 5000), ("big.json", ocr_json([[("A", [0, 0, 1, 1])]]))],
    )
    (reject,) = read_wds(shard, tmp_path)  # under a 1 MiB limit the member is read (and is no PDF)
    assert reject.reason == Reason.BAD_DOCUMENT
    (reject,) = read_wds(shard, tmp_path, max_file_bytes=1000)
    assert (reject.key, reject.reason) == ("s.tar:big", Reason.IMAGE_TOO_LARGE)
    assert "5004 bytes" in reject.detail


# ---- wds-ocr: broken archives and annotations -----------------------------------------------------


def test_a_file_that_is_not_a_tar_is_one_reject(tmp_path):
    (tmp_path / "s.tar").write_bytes(b"\x00\x01 not a tar" * 10)
    (reject,) = read_source("wds-ocr", tmp_path)
    assert (reject.key, reject.reason) == ("s.tar", Reason.BAD_DOCUMENT)


def test_a_truncated_tar_keeps_the_documents_before_the_cut(tmp_path):
    one_page = ocr_json([[("A", [0.1, 0.1, 0.5, 0.1])]])
    members = [("a.png", image_bytes((20, 20), "red")), ("a.json", one_page)]
    members += [("b.pdf", pdf_bytes([(50, 50)]) + b" " * 4000), ("b.json", one_page)]
    shard = write_tar(tmp_path / "s.tar", members)
    data = shard.read_bytes()
    shard.write_bytes(data[: data.index(b"%PDF") + 1000])  # cut inside b.pdf
    first, second = read_source("wds-ocr", tmp_path)
    assert isinstance(first, Sample) and first.key == "s.tar:a/p0"
    assert (second.key, second.reason) == ("s.tar:b", Reason.BAD_DOCUMENT)


def test_a_corrupt_header_mid_archive_is_reported_not_taken_as_the_end(tmp_path):
    one_page = ocr_json([[("A", [0.1, 0.1, 0.5, 0.1])]])
    members = [("a.png", image_bytes((20, 20), "red")), ("a.json", one_page)]
    members += [("b.png", image_bytes((20, 20), "blue")), ("b.json", one_page)]
    shard = write_tar(tmp_path / "s.tar", members)
    data = bytearray(shard.read_bytes())
    header = data.index(b"b.png")  # the third member's header
    data[header + 148 : header + 156] = b"garbage!"  # its checksum field: tarfile stops reading there
    shard.write_bytes(bytes(data))
    records = read_source("wds-ocr", tmp_path)
    assert [r.key for r in records if isinstance(r, Sample)] == ["s.tar:a/p0"]
    (reject,) = [r for r in records if isinstance(r, Reject)]
    assert reject.reason == Reason.BAD_DOCUMENT and "unreadable" in reject.detail


def test_a_whole_tar_reports_nothing_after_its_end(tmp_path):
    one_page = ocr_json([[("A", [0.1, 0.1, 0.5, 0.1])]])
    write_tar(tmp_path / "s.tar", [("a.png", image_bytes((20, 20), "red")), ("a.json", one_page)])
    assert [type(r) for r in read_source("wds-ocr", tmp_path)] == [Sample]


def test_link_members_are_not_followed(tmp_path):
    shard = tmp_path / "s.tar"
    with tarfile.open(shard, "w") as archive:
        link = tarfile.TarInfo("doc.pdf")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
        data = ocr_json([[("A", [0.1, 0.1, 0.5, 0.1])]])
        info = tarfile.TarInfo("doc.json")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    (reject,) = read_source("wds-ocr", tmp_path)
    assert (reject.key, reject.reason) == ("s.tar:doc", Reason.BAD_DOCUMENT) and "link" in reject.detail


@pytest.mark.parametrize(
    ("annotation", "reason", "fragment"),
    [
        ({"pages": []}, Reason.MALFORMED, "non-empty 'pages'"),
        ([1, 2], Reason.MALFORMED, "non-empty 'pages'"),
        ({"pages": [{"words": {}}]}, Reason.MALFORMED, "no 'lines'"),
        ({"pages": [{"lines": {"text": ["a"], "bbox": []}}]}, Reason.MALFORMED, "same length"),
        ({"pages": [{"lines": {"text": ["a"], "bbox": [[0, 0, 1]]}}]}, Reason.MALFORMED, "bbox must be"),
        ({"pages": [{"lines": {"text": ["a"], "bbox": [[0, 0, -1, 1]]}}]}, Reason.MALFORMED, "bbox must be"),
        (
            {"pages": [{"lines": {"text": ["a"], "bbox": [[10**400, 0, 1, 1]]}}]},
            Reason.MALFORMED,
            "bbox must be",
        ),
        ({"pages": [{"lines": {"text": [7], "bbox": [[0, 0, 1, 1]]}}]}, Reason.MALFORMED, "must be a string"),
        ({"pages": [{"lines": {"text": [" "], "bbox": [[0, 0, 1, 1]]}}]}, Reason.MALFORMED, "no text lines"),
    ],
)
def test_bad_ocr_annotations_are_rejected(tmp_path, annotation, reason, fragment):
    write_tar(
        tmp_path / "s.tar",
        [("d.png", image_bytes((20, 20), "red")), ("d.json", json.dumps(annotation).encode())],
    )
    (reject,) = read_source("wds-ocr", tmp_path)
    assert reject.reason == reason and fragment in reject.detail, reject


def test_a_nan_box_is_rejected_not_passed_on(tmp_path):
    annotation = b'{"pages": [{"lines": {"text": ["a"], "bbox": [[NaN, 0, 1, 1]]}}]}'
    write_tar(tmp_path / "s.tar", [("d.png", image_bytes((20, 20), "red")), ("d.json", annotation)])
    (reject,) = read_source("wds-ocr", tmp_path)
    assert (reject.key, reject.reason) == ("s.tar:d/p0", Reason.MALFORMED)


def test_an_undecodable_page_image_is_rejected(tmp_path):
    one_page = ocr_json([[("A", [0.1, 0.1, 0.5, 0.1])]])
    write_tar(tmp_path / "s.tar", [("d.webp", b"RIFF not webp"), ("d.json", one_page)])
    (reject,) = read_source("wds-ocr", tmp_path)
    assert (reject.key, reject.reason) == ("s.tar:d/p0", Reason.BAD_IMAGE)


def test_pages_render_the_same_from_several_threads(corrupt_wds_ocr_source):
    shards = list_shards("wds-ocr", corrupt_wds_ocr_source)

    def read(shard: Path) -> list:
        return list(
            read_shard("wds-ocr", shard, corrupt_wds_ocr_source, source="s", category="ocr", split="train")
        )

    sequential = [read(shard) for shard in shards * 2]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(read, shards * 2))
    assert threaded == sequential


# ---- reading order --------------------------------------------------------------------------------


def test_reading_order_rows_then_left_to_right():
    rects = [
        (0.6, 0.10, 0.3, 0.05),  # right column, first row, a little higher than its neighbour
        (0.1, 0.11, 0.3, 0.05),  # left column, first row
        (0.1, 0.30, 0.3, 0.05),  # second row
        (0.1, 0.20, 0.3, 0.05),  # between them: its own row (centres 0.1 apart > half a height)
    ]
    assert reading_order(rects) == [[1, 0], [3], [2]]


def test_reading_order_does_not_chain_a_sloping_page_into_one_row():
    rects = [(0.1 * i, 0.02 * i, 0.1, 0.05) for i in range(6)]  # each 0.02 below the last, height 0.05
    rows = reading_order(rects)
    assert [i for row in rows for i in row] == list(range(6)) and len(rows) > 1


# ---- robustness: never raise on bad input ---------------------------------------------------------


def _mutations(rng: random.Random, value, depth: int = 0):
    """`value` with one random part replaced by something of another shape."""
    junk = [
        None,
        3,
        -1.5,
        True,
        "",
        "x",
        [],
        {},
        [None],
        {"from": 1},
        "../../etc/passwd",
        "/abs.png",
        "\ud800",
        10**400,
        float("nan"),
        [0, 0, 1e308, 1e308],
    ]
    if depth > 3 or rng.random() < 0.25:
        return rng.choice(junk)
    if isinstance(value, dict) and value:
        key = rng.choice(list(value))
        return {**value, key: _mutations(rng, value[key], depth + 1)}
    if isinstance(value, list) and value:
        index = rng.randrange(len(value))
        return [*value[:index], _mutations(rng, value[index], depth + 1), *value[index + 1 :]]
    return rng.choice(junk)


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
    lines = [json.dumps(_mutations(rng, valid)) for _ in range(300)]
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


def test_mutated_ocr_annotations_each_become_one_record(tmp_path):
    rng = random.Random(1)
    valid = {"pages": [{"lines": {"text": ["a", "b"], "bbox": [[0.1, 0.1, 0.2, 0.1], [0.1, 0.5, 0.2, 0.1]]}}]}
    annotations = [valid if i % 3 == 0 else _mutations(rng, valid) for i in range(60)]
    page = image_bytes((16, 16), "red")
    write_tar(
        tmp_path / "s.tar",
        [
            m
            for i, note in enumerate(annotations)
            for m in [(f"d{i}.png", page), (f"d{i}.json", json.dumps(note).encode())]
        ],
    )
    records = read_source("wds-ocr", tmp_path)
    assert {r.key.split(":")[1].split("/")[0] for r in records} == {f"d{i}" for i in range(60)}
    samples, rejects = split(records)
    assert len(samples) >= 20 and rejects


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


@pytest.mark.parametrize(
    ("line", "fragment"),
    [(b"[" * 100_000, "nested too deeply"), (b'{"id": ' + b"1" * 5000 + b"}", "digits")],
)
def test_pathological_json_is_invalid_json(tmp_path, line, fragment):
    (tmp_path / "d.jsonl").write_bytes(line + b"\n")
    for fmt in ["llava", "jsonl-text"]:
        (reject,) = read_source(fmt, tmp_path)
        assert reject.reason == Reason.INVALID_JSON and fragment in reject.detail


def test_a_json_file_that_is_not_a_list_is_one_reject(tmp_path):
    (tmp_path / "d.json").write_text('{"conversations": []}')
    (reject,) = read_source("llava", tmp_path)
    assert (reject.key, reject.reason) == ("d.json", Reason.MALFORMED) and "array" in reject.detail
