import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from mm15.data.record import Box, Reason, Reject, Sample, sample_id
from mm15.data.validate import Limits, Validated, clean_detail, validate
from tests.images import encode, picture, png


def make(images=None, messages=None, boxes=(), **kw) -> Sample:
    images = [png(1)] if images is None else images
    if messages is None:
        markers = "<image>" * len(images)
        messages = [
            {"role": "user", "content": f"{markers}What is it?"},
            {"role": "assistant", "content": "A picture."},
        ]
    return Sample(
        source="s",
        key="k1",
        category="general",
        split="train",
        messages=messages,
        images=images,
        boxes=list(boxes),
        **kw,
    )


def reason_of(sample: Sample, limits: Limits = Limits()) -> str:
    result = validate(sample, limits)
    assert isinstance(result, Reject), result
    assert result.source == "s" and result.key == "k1" and result.detail
    return result.reason


def test_valid_sample_becomes_rows():
    out = validate(make(boxes=[Box(0, 1, 2, 50, 60)], task="t", tier=2, meta={"answer": "x"}))
    assert isinstance(out, Validated)
    row = out.sample
    assert row.n_images == 1 and row.image_ids == [out.images[0].image_id]
    assert (out.images[0].width, out.images[0].height, out.images[0].format) == (96, 80, "PNG")
    assert row.sample_id == sample_id(row.image_ids, row.messages)
    assert row.tier == 2 and row.task == "t" and '"answer"' in row.meta
    assert row.boxes == [{"image": 0, "x1": 1, "y1": 2, "x2": 50, "y2": 60}]


def test_sample_id_ignores_case_and_whitespace_but_not_images():
    a = validate(make()).sample.sample_id
    messages = [
        {"role": "user", "content": "<image>What   IS it? "},
        {"role": "assistant", "content": "a picture. "},
    ]
    assert validate(make(messages=messages)).sample.sample_id == a
    assert validate(make(images=[png(2)])).sample.sample_id != a


def test_unreadable_image():
    assert reason_of(make(images=[b"not an image at all"])) == Reason.BAD_IMAGE


def test_truncated_image():
    data = encode(picture(3, (200, 200)), "JPEG", quality=95)
    assert reason_of(make(images=[data[: len(data) // 2]])) == Reason.BAD_IMAGE


def test_decompression_bomb_is_refused_before_decoding():
    bomb = encode(Image.new("1", (9000, 9000)))  # tiny file, 81 M pixels
    assert len(bomb) < 100_000
    assert reason_of(make(images=[bomb])) == Reason.IMAGE_TOO_LARGE


def test_absurd_aspect_ratio():
    assert reason_of(make(images=[encode(Image.new("RGB", (4000, 10)))])) == Reason.IMAGE_TOO_LARGE


def test_image_file_over_byte_limit():
    assert reason_of(make(images=[png(1)]), Limits(max_image_bytes=100)) == Reason.IMAGE_TOO_LARGE


def test_marker_count_must_match_images():
    messages = [
        {"role": "user", "content": "<image><image> compare"},
        {"role": "assistant", "content": "same"},
    ]
    assert reason_of(make(messages=messages)) == Reason.IMAGE_COUNT_MISMATCH
    assert isinstance(validate(make(images=[png(1), png(2)])), Validated)  # two markers, two images


@pytest.mark.parametrize(
    ("messages", "reason"),
    [
        ([], Reason.EMPTY_CONVERSATION),
        (
            [{"role": "user", "content": "<image>hi"}, {"role": "assistant", "content": "  "}],
            Reason.EMPTY_CONVERSATION,
        ),
        ([{"role": "user", "content": "<image>hi"}], Reason.MALFORMED_CONVERSATION),
        (
            [{"role": "bot", "content": "<image>hi"}, {"role": "assistant", "content": "x"}],
            Reason.MALFORMED_CONVERSATION,
        ),
        (
            [{"role": "user", "content": 3}, {"role": "assistant", "content": "x"}],
            Reason.MALFORMED_CONVERSATION,
        ),
        ([{"role": "user"}, {"role": "assistant", "content": "x"}], Reason.MALFORMED_CONVERSATION),
        (
            [{"role": "user", "content": "<image>\ud800"}, {"role": "assistant", "content": "x"}],
            Reason.INVALID_UTF8,
        ),
    ],
)
def test_conversation_checks(messages, reason):
    assert reason_of(make(messages=messages)) == reason


def test_boxes_must_lie_inside_their_image():
    assert isinstance(validate(make(boxes=[Box(0, 0, 0, 96, 80)])), Validated)
    assert reason_of(make(boxes=[Box(0, 10, 10, 97, 20)])) == Reason.BOX_OUTSIDE_IMAGE
    assert reason_of(make(boxes=[Box(0, -1, 10, 5, 20)])) == Reason.BOX_OUTSIDE_IMAGE
    assert reason_of(make(boxes=[Box(0, 30, 10, 20, 20)])) == Reason.BOX_OUTSIDE_IMAGE  # x1 > x2
    assert reason_of(make(boxes=[Box(1, 0, 0, 5, 5)])) == Reason.BOX_OUTSIDE_IMAGE  # no image 1


def test_oversize_samples():
    long = [{"role": "user", "content": "<image>" + "x" * 200}, {"role": "assistant", "content": "y"}]
    assert reason_of(make(messages=long), Limits(max_text_chars=100)) == Reason.OVERSIZE_SAMPLE
    assert reason_of(make(images=[png(1)] * 3), Limits(max_images=2)) == Reason.OVERSIZE_SAMPLE
    assert (
        reason_of(make(images=[png(1)] * 3), Limits(max_sample_bytes=len(png(1)) * 2))
        == Reason.OVERSIZE_SAMPLE
    )


def test_unknown_category_or_split():
    turns = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    assert reason_of(Sample("s", "k1", "poetry", "train", turns)) == Reason.MALFORMED
    assert reason_of(Sample("s", "k1", "general", "dev", turns)) == Reason.MALFORMED


def test_text_only_sample_is_valid():
    s = Sample(
        "s",
        "k1",
        "text_only",
        "train",
        [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}],
    )
    out = validate(s)
    assert isinstance(out, Validated) and out.sample.n_images == 0 and out.images == []


def test_image_roundtrip_keeps_bytes():
    data = png(5)
    out = validate(make(images=[data]))
    assert out.images[0].bytes == data
    assert Image.open(io.BytesIO(out.images[0].bytes)).size == (96, 80)


# ---- rejects are the same on every run ------------------------------------------------------------

CORRUPT_IMAGES = {
    "not an image": b"not an image at all",
    "truncated PNG": png(1)[:60],
    "PNG signature, no chunks": b"\x89PNG\r\n\x1a\n" + bytes(40),
    "GIF header, garbage": b"GIF89a" + b"\x01" * 30,
    "truncated JPEG": encode(picture(3, (200, 200)), "JPEG", quality=95)[:2000],
}

DETAILS_SCRIPT = """
import json, sys
from mm15.data.validate import validate
from tests.data.test_validate import CORRUPT_IMAGES, make
junk = [bytearray(n) for n in range(1, 200)]  # moves later allocations about
print(json.dumps({name: validate(make(images=[data])).detail for name, data in CORRUPT_IMAGES.items()}))
"""


def corrupt_image_details() -> dict[str, str]:
    details = {}
    for name, data in CORRUPT_IMAGES.items():
        result = validate(make(images=[data]))
        assert isinstance(result, Reject) and result.reason == Reason.BAD_IMAGE, (name, result)
        details[name] = result.detail
    return details


def test_bad_image_details_name_no_memory_address():
    details = corrupt_image_details()
    for name, detail in details.items():
        assert "0x" not in detail, (name, detail)
        assert detail.startswith("image 0: ") and len(detail) > len("image 0: "), (name, detail)
    assert (
        details["not an image"]
        == "image 0: UnidentifiedImageError: cannot identify image file <_io.BytesIO object>"
    )


def test_bad_image_details_are_identical_across_processes():
    root = Path(__file__).resolve().parents[2]
    runs = [
        subprocess.run(
            [sys.executable, "-c", DETAILS_SCRIPT], cwd=root, capture_output=True, text=True, check=True
        ).stdout
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    assert json.loads(runs[0]) == corrupt_image_details()


@pytest.mark.parametrize(
    ("detail", "clean"),
    [
        (
            "cannot identify image file <_io.BytesIO object at 0x7f6935617b00>",
            "cannot identify image file <_io.BytesIO object>",
        ),
        ("<function f at 0xDEADBEEF> and <Foo at 0x1>", "<function f> and <Foo>"),
        (
            "Unsupported marker 0xFFD8, image file is truncated",
            "Unsupported marker 0xFFD8, image file is truncated",
        ),
    ],
)
def test_clean_detail_drops_memory_addresses_only(detail, clean):
    assert clean_detail(detail) == clean
