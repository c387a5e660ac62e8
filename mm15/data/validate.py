"""Check a Sample and turn it into catalog rows, or into a Reject with a reason.

Validation is where every source meets the same rules, so adapters only check what is specific to
their format. Images are decoded here (once) to catch truncation, bombs and absurd sizes and to
compute the content and perceptual hashes that dedup needs.
"""

from __future__ import annotations

import io
import json
import re
import warnings
from dataclasses import dataclass

from PIL import Image

from mm15.data.dedup import perceptual_hash
from mm15.data.record import (
    CATEGORIES,
    IMAGE_TOKEN,
    ROLES,
    SPLITS,
    Reason,
    Reject,
    Sample,
    hash64,
    sample_id,
    sha256_hex,
)


@dataclass(frozen=True)
class Limits:
    """What a sample may be. Past these it is quarantined, not truncated."""

    max_pixels: int = 40_000_000  # decompression bombs; ~9 tiles of 672^2 is 4 MP
    max_side: int = 16_384
    max_aspect: float = 64.0
    max_images: int = 32
    max_text_chars: int = 64_000
    max_image_bytes: int = 64 * 2**20
    max_sample_bytes: int = 256 * 2**20


@dataclass
class ImageRow:
    image_id: str
    width: int
    height: int
    format: str
    phash: list[int]
    bytes: bytes


@dataclass
class SampleRow:
    sample_id: str
    hash64: int
    source: str
    key: str
    category: str
    split: str
    task: str
    tier: int
    n_images: int
    image_ids: list[str]
    messages: list[dict[str, str]]
    boxes: list[dict[str, float]]
    meta: str
    text_chars: int


@dataclass
class Validated:
    sample: SampleRow
    images: list[ImageRow]


_MESSAGE_KEYS = frozenset(("role", "content"))
_META_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False)

# " at 0x7f3a..." in an object's repr, e.g. Pillow's "cannot identify image file <_io.BytesIO object at
# 0x7f3a...>": a memory address, different on every run.
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def clean_detail(detail: str) -> str:
    """`detail` without memory addresses, so the same input gives the same reject on every run."""
    return _ADDRESS.sub("", detail)


def _reject(s: Sample, reason: str, detail: str) -> Reject:
    return Reject(s.source, s.key, reason, clean_detail(detail)[:500])


def _check_messages(s: Sample, limits: Limits) -> Reject | None:
    if not isinstance(s.messages, list) or not s.messages:
        return _reject(s, Reason.EMPTY_CONVERSATION, "no messages")
    roles, n_chars, markers, answered = set(), 0, 0, False
    for i, m in enumerate(s.messages):  # one pass: this runs for every sample of every source
        if not isinstance(m, dict) or m.keys() != _MESSAGE_KEYS:
            return _reject(s, Reason.MALFORMED_CONVERSATION, f"message {i} is not {{role, content}}")
        role, content = m["role"], m["content"]
        if role not in ROLES or not isinstance(content, str):
            return _reject(s, Reason.MALFORMED_CONVERSATION, f"message {i} has role {role!r}")
        try:
            content.encode("utf-8")
        except UnicodeEncodeError as e:
            return _reject(s, Reason.INVALID_UTF8, f"message {i}: {e.reason}")
        roles.add(role)
        n_chars += len(content)
        markers += content.count(IMAGE_TOKEN)
        answered = answered or (role == "assistant" and bool(content.strip()))
    if "user" not in roles or "assistant" not in roles:
        return _reject(s, Reason.MALFORMED_CONVERSATION, "needs a user and an assistant turn")
    if not answered:
        return _reject(s, Reason.EMPTY_CONVERSATION, "every assistant turn is empty")
    if n_chars > limits.max_text_chars:
        return _reject(s, Reason.OVERSIZE_SAMPLE, f"{n_chars} characters > {limits.max_text_chars}")
    if markers != len(s.images):
        return _reject(
            s, Reason.IMAGE_COUNT_MISMATCH, f"{markers} {IMAGE_TOKEN} markers but {len(s.images)} images"
        )
    return None


def decode_image(data: bytes, limits: Limits) -> tuple[Image.Image | None, str, str]:
    """Decode fully (so truncation shows), refusing bombs: (image, reason, detail)."""
    if len(data) > limits.max_image_bytes:
        return None, Reason.IMAGE_TOO_LARGE, f"{len(data)} bytes > {limits.max_image_bytes}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            if w * h > limits.max_pixels or max(w, h) > limits.max_side:
                return None, Reason.IMAGE_TOO_LARGE, f"{w}x{h} pixels"
            if max(w, h) / max(1, min(w, h)) > limits.max_aspect:
                return None, Reason.IMAGE_TOO_LARGE, f"{w}x{h}: aspect ratio over {limits.max_aspect:g}"
            img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        return None, Reason.IMAGE_TOO_LARGE, clean_detail(str(e))
    except Exception as e:  # PIL raises many types for bad input; all mean "not a usable image"
        return None, Reason.BAD_IMAGE, clean_detail(f"{type(e).__name__}: {e}")
    return img, "", ""


def validate(s: Sample, limits: Limits = Limits()) -> Validated | Reject:
    """The catalog rows of a valid sample, or the reason it is quarantined."""
    if s.category not in CATEGORIES:
        return _reject(s, Reason.MALFORMED, f"unknown category {s.category!r}")
    if s.split not in SPLITS:
        return _reject(s, Reason.MALFORMED, f"unknown split {s.split!r}")
    if (bad := _check_messages(s, limits)) is not None:
        return bad
    if len(s.images) > limits.max_images:
        return _reject(s, Reason.OVERSIZE_SAMPLE, f"{len(s.images)} images > {limits.max_images}")
    if sum(len(b) for b in s.images) > limits.max_sample_bytes:
        return _reject(s, Reason.OVERSIZE_SAMPLE, f"images total over {limits.max_sample_bytes} bytes")
    images: list[ImageRow] = []
    for k, data in enumerate(s.images):
        img, reason, detail = decode_image(data, limits)
        if img is None:
            return _reject(s, reason, f"image {k}: {detail}")
        images.append(
            ImageRow(sha256_hex(data), img.width, img.height, img.format or "", perceptual_hash(img), data)
        )
    for b in s.boxes:
        if not 0 <= b.image < len(images):
            return _reject(s, Reason.BOX_OUTSIDE_IMAGE, f"box refers to image {b.image} of {len(images)}")
        w, h = images[b.image].width, images[b.image].height
        if not (0 <= b.x1 <= b.x2 <= w and 0 <= b.y1 <= b.y2 <= h):
            return _reject(
                s,
                Reason.BOX_OUTSIDE_IMAGE,
                f"box [{b.x1:g}, {b.y1:g}, {b.x2:g}, {b.y2:g}] on a {w}x{h} image",
            )
    try:
        meta = "{}" if s.meta == {} else _META_JSON.encode(s.meta)
    except (TypeError, ValueError) as e:
        return _reject(s, Reason.MALFORMED, f"meta is not JSON: {e}")
    image_ids = [im.image_id for im in images]
    sid = sample_id(image_ids, s.messages)
    row = SampleRow(
        sample_id=sid,
        hash64=hash64(sid),
        source=s.source,
        key=s.key,
        category=s.category,
        split=s.split,
        task=s.task,
        tier=int(s.tier),
        n_images=len(images),
        image_ids=image_ids,
        messages=[{"role": m["role"], "content": m["content"]} for m in s.messages],
        boxes=[{"image": b.image, "x1": b.x1, "y1": b.y1, "x2": b.x2, "y2": b.y2} for b in s.boxes],
        meta=meta,
        text_chars=sum(len(m["content"]) for m in s.messages),
    )
    return Validated(row, images)
