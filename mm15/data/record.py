"""The sample record every source produces, and the reject every failure becomes.

Adapters and generators yield :class:`Sample` (or :class:`Reject` for input they cannot
parse); :mod:`mm15.data.validate` checks each Sample and turns it into catalog rows.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

CATEGORIES = (
    "caption",
    "ocr",
    "general",
    "text_rich",
    "refer_ground",
    "science",
    "math",
    "code",
    "multi_image",
    "text_only",
)
SPLITS = ("train", "eval")
ROLES = ("system", "user", "assistant")
IMAGE_TOKEN = "<image>"


class Reason:
    """Why a row was quarantined: the `reason` column of the rejects table."""

    INVALID_JSON = "invalid_json"
    INVALID_UTF8 = "invalid_utf8"
    MALFORMED = "malformed_record"  # wrong fields or types in the source's own layout
    EMPTY_CONVERSATION = "empty_conversation"
    MALFORMED_CONVERSATION = "malformed_conversation"
    MISSING_FILE = "missing_file"
    PATH_ESCAPE = "path_escape"
    BAD_IMAGE = "bad_image"  # unreadable, truncated or not an image
    IMAGE_TOO_LARGE = "image_too_large"  # decompression bomb or absurd size
    IMAGE_COUNT_MISMATCH = "image_count_mismatch"
    BOX_OUTSIDE_IMAGE = "box_outside_image"
    OVERSIZE_SAMPLE = "oversize_sample"
    BAD_DOCUMENT = "bad_document"  # a PDF that cannot be rendered
    DUPLICATE = "duplicate"
    CONTAMINATED = "contaminated"  # a train sample sharing an image with an eval sample


# Reasons that mean a record could not be read in the source's format at all (as opposed to a record
# that was read but failed validation): a source whose every record fails so was given the wrong format.
FORMAT_REASONS = frozenset({Reason.INVALID_JSON, Reason.INVALID_UTF8, Reason.MALFORMED, Reason.BAD_DOCUMENT})


@dataclass
class Box:
    """A box (or a point when x1 == x2 and y1 == y2) in pixels of image `image`."""

    image: int
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass
class Sample:
    """One training or eval example, before validation.

    `images` holds encoded image files (PNG, JPEG, ...) in the order of the `<image>`
    markers in `messages`. `key` is the source's own id for the row (file and line,
    record id, ...), used in rejects so a user can find the offending input.
    """

    source: str
    key: str
    category: str
    split: str
    messages: list[dict[str, str]]
    images: list[bytes] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)
    task: str = ""
    tier: int = 0
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Reject:
    """Input that could not become a Sample, with a reason from :class:`Reason`."""

    source: str
    key: str
    reason: str
    detail: str


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_SPACE = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """Lower-cased, whitespace-collapsed text: the text part of a sample's identity."""
    return _SPACE.sub(" ", text).strip().lower()


def sample_id(image_ids: list[str], messages: list[dict[str, str]]) -> str:
    """Stable content hash of a sample: its images' hashes plus its normalised text."""
    text = [[m["role"], normalise_text(m["content"])] for m in messages]
    payload = json.dumps({"images": image_ids, "messages": text}, separators=(",", ":"))
    return sha256_hex(payload.encode())


def hash64(hex_digest: str) -> int:
    """A stable signed 64-bit integer from a hex digest, for sampling and splits."""
    return int.from_bytes(bytes.fromhex(hex_digest[:16]), "big", signed=True)
