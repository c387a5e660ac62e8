"""Document pages as PNG images: PDF pages rendered with pdfium, scanned page images fitted to a size."""

from __future__ import annotations

import io
import threading
from typing import Protocol

import pypdfium2 as pdfium
from PIL import Image

from mm15.data.adapters.origin import Rejected
from mm15.data.record import Reason

# pdfium is not thread-safe, not even across documents, and curation runs shards in threads:
# every pdfium call, closing included, holds this lock.
PDFIUM_LOCK = threading.Lock()


class Pages(Protocol):
    count: int

    def render(self, index: int, max_side: int) -> tuple[bytes, tuple[int, int]]:
        """Page `index` as encoded image bytes and its (width, height) in pixels."""
        ...

    def close(self) -> None: ...


def open_pages(data: bytes, is_pdf: bool) -> Pages:
    """The pages of a PDF, or the single page of a scanned image; `Rejected` if it cannot be opened."""
    return PdfPages(data) if is_pdf else ImagePage(data)


class PdfPages:
    def __init__(self, data: bytes):
        try:
            with PDFIUM_LOCK:
                self._pdf = pdfium.PdfDocument(data)
                self.count = len(self._pdf)
        except Exception as error:  # pdfium's errors on hostile input are not all PdfiumError
            raise Rejected(Reason.BAD_DOCUMENT, f"cannot open PDF: {error}") from None

    def render(self, index: int, max_side: int) -> tuple[bytes, tuple[int, int]]:
        """The page rendered so that its long side is `max_side` pixels."""
        try:
            with PDFIUM_LOCK:
                page = self._pdf[index]
                try:
                    width, height = page.get_size()
                    if not (width > 0 and height > 0):
                        raise ValueError(f"page size is {width} x {height} points")
                    bitmap = page.render(scale=max_side / max(width, height))
                    try:
                        image = bitmap.to_pil().convert("RGB")  # a copy: the bitmap's buffer is freed below
                    finally:
                        bitmap.close()
                finally:
                    page.close()
        except Exception as error:
            raise Rejected(Reason.BAD_DOCUMENT, f"cannot render page {index}: {error}") from None
        return png_bytes(image), image.size

    def close(self) -> None:
        with PDFIUM_LOCK:
            self._pdf.close()


class ImagePage:
    """A scanned page: kept as is when it is a PNG or JPEG that fits, otherwise downscaled to PNG."""

    count = 1

    def __init__(self, data: bytes):
        self._data = data

    def render(self, index: int, max_side: int) -> tuple[bytes, tuple[int, int]]:
        try:
            with Image.open(io.BytesIO(self._data)) as image:
                width, height = image.size
                if Image.MAX_IMAGE_PIXELS and width * height > Image.MAX_IMAGE_PIXELS:
                    raise Rejected(Reason.IMAGE_TOO_LARGE, f"page image is {width} x {height} pixels")
                if image.format in ("PNG", "JPEG") and max(width, height) <= max_side:
                    return self._data, (width, height)
                scale = min(1.0, max_side / max(width, height))
                size = (max(1, round(width * scale)), max(1, round(height * scale)))
                page = image.convert("RGB").resize(size, Image.Resampling.BICUBIC)
        except Image.DecompressionBombError as error:
            raise Rejected(Reason.IMAGE_TOO_LARGE, str(error)) from None
        except (OSError, ValueError, SyntaxError) as error:  # Pillow's ways of saying "not an image"
            raise Rejected(Reason.BAD_IMAGE, f"cannot decode page image: {error}") from None
        return png_bytes(page), page.size

    def close(self) -> None:
        pass


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()
