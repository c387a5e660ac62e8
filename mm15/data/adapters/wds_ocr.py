"""WebDataset OCR shards in the pixparse PDFA/IDL layout: one OCR Sample per document page.

Members are grouped by key (the member name up to the first dot of its basename). Per key: a
`.pdf` or a page image, and a `.json` with ``pages[i].lines.{text, bbox}``, boxes normalised
``[x, y, w, h]``. The tar is read as a stream, member by member, and never extracted to disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from mm15.data.adapters.json_input import parse_json
from mm15.data.adapters.origin import Rejected, ShardOrigin, type_name
from mm15.data.adapters.page_images import Pages, open_pages
from mm15.data.adapters.reading_order import Rect, reading_order
from mm15.data.record import IMAGE_TOKEN, Box, Reason, Reject, Sample

MAX_SIDE = 1344
IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "tif", "tiff", "webp")
USED_EXTENSIONS = ("json", "pdf", *IMAGE_EXTENSIONS)
PROMPTS = (
    "Transcribe the text.",
    "Read all the text on this page.",
    "Write out the text of this document.",
)
# what tarfile and the decompressors raise on a truncated or corrupt archive
ARCHIVE_ERRORS = (tarfile.TarError, EOFError, OSError, ValueError, zlib.error)


@dataclass
class Document:
    """The members of one key, or the first reason the key cannot be used."""

    key: str
    members: dict[str, bytes] = field(default_factory=dict)  # extension -> bytes
    problem: Rejected | None = None

    def fail(self, reason: str, detail: str) -> None:
        self.problem = self.problem or Rejected(reason, detail)


def read_wds_ocr(
    shard: Path, root: Path, origin: ShardOrigin, max_file_bytes: int, max_side: int = MAX_SIDE
) -> Iterator[Sample | Reject]:
    """One Sample or Reject per page, or one Reject per unusable document (or for a file that is no tar)."""
    for document in list_documents(shard, max_file_bytes):
        yield from _document_records(document, origin, max_side)


def list_documents(shard: Path, max_file_bytes: int) -> Iterator[Document]:
    """The shard's documents in archive order (a file that is no tar: one document keyed "", failed)."""
    with open(shard, "rb") as file:  # a missing or unreadable shard raises OSError here: the caller retries
        try:
            # closed by `with archive` below: opening apart tells a file that is no tar from a corrupt one
            archive = tarfile.open(fileobj=file, mode="r|*")  # noqa: SIM115
        except ARCHIVE_ERRORS as error:
            yield Document("", problem=Rejected(Reason.BAD_DOCUMENT, f"not a readable tar archive: {error}"))
            return
        document: Document | None = None
        try:
            with archive:
                for member in archive:
                    if member.isdir():
                        continue
                    key, extension = split_member_name(member.name)
                    if document is None or key != document.key:
                        if document is not None:
                            yield document
                        document = Document(key)
                    _add_member(document, archive, member, extension, max_file_bytes)
        except ARCHIVE_ERRORS as error:  # truncated or corrupt: the document being read is lost
            document = document or Document("")
            document.problem = Rejected(Reason.BAD_DOCUMENT, f"archive is corrupt here: {error}")
        if document is not None:
            yield document
        if (offset := _unreadable_from(file, archive)) is not None:
            detail = f"unreadable data from byte {offset}: a corrupt member header ends the archive early"
            yield Document("", problem=Rejected(Reason.BAD_DOCUMENT, detail))


def _unreadable_from(file: BinaryIO, archive: tarfile.TarFile) -> int | None:
    """Where data lies past the point tarfile stopped (it takes a corrupt header for the end), if it does.

    Only an uncompressed archive can be checked: past its end there is nothing but zero padding.
    """
    if getattr(archive.fileobj, "comptype", "tar") != "tar":
        return None
    file.seek(archive.offset)
    while block := file.read(1 << 16):
        if block.count(0) != len(block):
            return archive.offset
    return None


def split_member_name(name: str) -> tuple[str, str]:
    """("folder/doc42", "pdf") for "folder/doc42.pdf": WebDataset's key and extension."""
    path = PurePosixPath(name)
    stem, _, extension = path.name.partition(".")
    return (path.parent / stem).as_posix(), extension.lower()


def _add_member(
    document: Document, archive: tarfile.TarFile, member: tarfile.TarInfo, extension: str, max_bytes: int
) -> None:
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts:
        document.fail(Reason.PATH_ESCAPE, f"member name {member.name!r} leaves the archive")
    elif not member.isfile():
        document.fail(Reason.BAD_DOCUMENT, f"member {member.name!r} is a link or device, not a file")
    elif extension not in USED_EXTENSIONS:
        return
    elif member.size > max_bytes:
        document.fail(
            Reason.IMAGE_TOO_LARGE, f"member {member.name!r} is {member.size} bytes, over {max_bytes}"
        )
    elif extension in document.members:
        document.fail(Reason.MALFORMED, f"two '.{extension}' members for one key")
    elif document.problem is None:
        document.members[extension] = archive.extractfile(member).read()  # type: ignore[union-attr]


def _document_records(document: Document, origin: ShardOrigin, max_side: int) -> Iterator[Sample | Reject]:
    try:
        pages, page_extension = _check_document(document)
        opened = open_pages(document.members[page_extension], is_pdf=page_extension == "pdf")
    except Rejected as error:
        yield origin.reject(document.key, error)
        return
    with contextlib.closing(opened):
        for index, page in enumerate(pages):
            try:
                record: Sample | Reject = _page_sample(opened, document.key, index, page, origin, max_side)
            except Rejected as error:
                record = origin.reject(page_key(document.key, index), error)
            yield record


def _check_document(document: Document) -> tuple[list[Any], str]:
    """The json's pages and the extension of the member holding the page images."""
    if document.problem:
        raise document.problem
    if "json" not in document.members:
        raise Rejected(Reason.MALFORMED, "no .json member for this key")
    annotation = parse_json(document.members["json"])
    pages = annotation.get("pages") if isinstance(annotation, dict) else None
    if not isinstance(pages, list) or not pages:
        raise Rejected(Reason.MALFORMED, f"json needs a non-empty 'pages' list, got {type_name(pages)}")
    page_extension = next((ext for ext in ("pdf", *IMAGE_EXTENSIONS) if ext in document.members), None)
    if page_extension is None:
        raise Rejected(Reason.MALFORMED, "no .pdf or page image member for this key")
    return pages, page_extension


def page_key(document_key: str, index: int) -> str:
    return f"{document_key}/p{index}"


def _page_sample(
    pages: Pages, document_key: str, index: int, page: Any, origin: ShardOrigin, max_side: int
) -> Sample:
    within = page_key(document_key, index)
    lines = page_lines(page)
    if index >= pages.count:
        raise Rejected(Reason.MALFORMED, f"page {index} is beyond the document's {pages.count} page(s)")
    image, (width, height) = pages.render(index, max_side)
    rows = reading_order([rect for _, rect in lines])
    ordered = [lines[i] for row in rows for i in row]
    transcript = "\n".join(" ".join(lines[i][0] for i in row) for row in rows)
    prompt = PROMPTS[int(hashlib.sha256(within.encode()).hexdigest(), 16) % len(PROMPTS)]
    # not clipped: a box outside [0, 1] stays outside the image, for the validator to reject
    boxes = [Box(0, x * width, y * height, (x + w) * width, (y + h) * height) for _, (x, y, w, h) in ordered]
    return origin.sample(
        within,
        [
            {"role": "user", "content": f"{IMAGE_TOKEN}\n{prompt}"},
            {"role": "assistant", "content": transcript},
        ],
        images=[image],
        boxes=boxes,
        meta={"document": document_key, "page": index, "lines": [text for text, _ in ordered]},
    )


def page_lines(page: Any) -> list[tuple[str, Rect]]:
    """(text, normalised [x, y, w, h]) of a page's non-blank lines; `Rejected` if the layout is wrong."""
    lines = page.get("lines") if isinstance(page, dict) else None
    if not isinstance(lines, dict):
        raise Rejected(Reason.MALFORMED, "page has no 'lines' object")
    texts, rects = lines.get("text"), lines.get("bbox")
    if not isinstance(texts, list) or not isinstance(rects, list) or len(texts) != len(rects):
        raise Rejected(Reason.MALFORMED, "'lines' needs lists 'text' and 'bbox' of the same length")
    parsed = []
    for number, (text, value) in enumerate(zip(texts, rects, strict=True)):
        if not isinstance(text, str):
            raise Rejected(Reason.MALFORMED, f"line {number} text must be a string, got {type_name(text)}")
        rect = _rect(value)
        if rect is None:
            raise Rejected(Reason.MALFORMED, f"line {number} bbox must be [x, y, w, h] with w, h >= 0")
        if text.strip():
            parsed.append((text.strip(), rect))
    if not parsed:
        raise Rejected(Reason.MALFORMED, "page has no text lines")
    return parsed


def _rect(value: Any) -> Rect | None:
    """Four finite floats with a width and height >= 0, or None."""
    if not isinstance(value, list) or len(value) != 4:
        return None
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        return None
    try:
        x, y, w, h = (float(v) for v in value)
    except OverflowError:  # an integer too large for a float
        return None
    finite = all(math.isfinite(v) for v in (x, y, w, h))
    return (x, y, w, h) if finite and w >= 0 and h >= 0 else None
