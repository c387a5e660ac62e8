"""The wds-ocr adapter (WebDataset tars of pages and OCR lines), end to end on small sources."""

from __future__ import annotations

import io
import json
import random
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from mm15.data.adapters import list_shards, read_shard
from mm15.data.adapters.origin import ShardOrigin
from mm15.data.adapters.reading_order import reading_order
from mm15.data.adapters.wds_ocr import PROMPTS, read_wds_ocr
from mm15.data.record import IMAGE_TOKEN, Reason, Reject, Sample
from tests.data.adapters.helpers import by_key, corners, mutation, split
from tests.fixtures_formats import image_bytes, ocr_json, pdf_bytes, read_source, write_tar

# ---- end to end -----------------------------------------------------------------------------------


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


def test_corrupt_wds_box_outside_the_page_comes_out_outside_the_image(corrupt_wds_ocr_source):
    samples = by_key(split(read_source("wds-ocr", corrupt_wds_ocr_source))[0])
    outside = samples["shard-000001.tar:outside/p0"]
    width, _ = Image.open(io.BytesIO(outside.images[0])).size
    assert outside.boxes[0].x1 == pytest.approx(1.2 * width) and outside.boxes[0].x1 > width  # not clipped
    assert "shard-000001.tar:short/p0" in samples  # the page the PDF has is kept


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


# ---- broken archives and annotations --------------------------------------------------------------


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


def test_mutated_ocr_annotations_each_become_one_record(tmp_path):
    rng = random.Random(1)
    valid = {"pages": [{"lines": {"text": ["a", "b"], "bbox": [[0.1, 0.1, 0.2, 0.1], [0.1, 0.5, 0.2, 0.1]]}}]}
    annotations = [valid if i % 3 == 0 else mutation(rng, valid) for i in range(60)]
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
