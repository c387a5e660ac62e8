"""Pillow drawing primitives shared by the generators: fonts, colours, shapes, text, PNG encoding."""

from __future__ import annotations

import io
import math
import random
import threading
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from mm15.data.synthetic.context import Context

RGB = tuple[int, int, int]
XYXY = tuple[int, int, int, int]

# Named colours far enough apart to be told apart after resizing to a few pixels.
COLOURS: dict[str, RGB] = {
    "red": (220, 40, 40),
    "green": (40, 160, 60),
    "blue": (40, 90, 230),
    "yellow": (235, 200, 20),
    "orange": (245, 135, 20),
    "purple": (140, 60, 190),
}
BACKGROUNDS: dict[str, RGB] = {
    "white": (250, 250, 250),
    "grey": (205, 205, 205),
    "beige": (238, 226, 200),
    "light blue": (208, 226, 246),
}
PAPERS: tuple[RGB, ...] = ((250, 250, 250), (245, 240, 225), (230, 238, 245), (228, 228, 228))
SHAPES = ("circle", "square", "triangle")
INK = (20, 20, 20)


_fonts = (
    threading.local()
)  # a FreeType face must not be shared by threads (curation may run shards in threads)


def font(size: int) -> ImageFont.FreeTypeFont:
    """Pillow's bundled scalable font (no system font files needed), cached per thread and size."""
    cached = _fonts.__dict__.setdefault("by_size", {})
    if size not in cached:
        cached[size] = ImageFont.load_default(size=size)
    return cached[size]


def font_size(base: int, fraction: float, minimum: int = 10) -> int:
    """A font size proportional to the base image side, never below legibility."""
    return max(minimum, round(base * fraction))


@lru_cache(maxsize=65536)
def text_width(size: int, text: str) -> float:
    return font(size).getlength(text)


def jitter(rng: random.Random, rgb: RGB, amount: int = 12) -> RGB:
    """The colour moved slightly: images vary beyond their named colours."""
    return tuple(min(255, max(0, c + rng.randint(-amount, amount))) for c in rgb)  # type: ignore[return-value]


def luminance(rgb: RGB) -> float:
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def contrasting_ink(rng: random.Random, background: RGB) -> RGB:
    """A dark ink on light backgrounds and a light one on dark backgrounds."""
    if luminance(background) > 128:
        return (rng.randint(0, 60), rng.randint(0, 60), rng.randint(0, 60))
    return (rng.randint(215, 255), rng.randint(215, 255), rng.randint(215, 255))


def draw_shape(draw: ImageDraw.ImageDraw, kind: str, box: XYXY, fill: RGB) -> None:
    """Draw `kind` filling the pixel box [x1, x2) x [y1, y2)."""
    x1, y1, x2, y2 = box
    inner = (x1, y1, x2 - 1, y2 - 1)
    if kind == "circle":
        draw.ellipse(inner, fill=fill)
    elif kind == "square":
        draw.rectangle(inner, fill=fill)
    elif kind == "triangle":
        draw.polygon([((x1 + x2 - 1) / 2, y1), (x2 - 1, y2 - 1), (x1, y2 - 1)], fill=fill)
    else:
        raise ValueError(f"unknown shape {kind!r}")


def arrow(
    draw: ImageDraw.ImageDraw, start: tuple[float, float], end: tuple[float, float], fill: RGB, width: int = 2
):
    """A line from `start` with an arrow head at `end`."""
    draw.line([start, end], fill=fill, width=width)
    angle = math.atan2(end[1] - start[1], end[0] - start[0])
    head = 3 + 2 * width
    left = (end[0] - head * math.cos(angle - 0.45), end[1] - head * math.sin(angle - 0.45))
    right = (end[0] - head * math.cos(angle + 0.45), end[1] - head * math.sin(angle + 0.45))
    draw.polygon([end, left, right], fill=fill)


def centred_text(
    draw: ImageDraw.ImageDraw, centre: tuple[float, float], text: str, size: int, fill: RGB
) -> XYXY:
    """Draw `text` centred on `centre`; returns its ink box."""
    draw.text(centre, text, font=font(size), fill=fill, anchor="mm")
    return draw.textbbox(centre, text, font=font(size), anchor="mm")


def text_card(ctx: Context, text: str, text_size: int) -> Image.Image:
    """`text` large and roughly centred on a plain background of random colour.

    The text shrinks to fit a `ctx.size()` canvas, and the canvas grows where even the smallest
    legible size does not fit, so the answer is always fully visible.
    """
    rng = ctx.rng
    width, height = ctx.size()
    while text_size > 10 and text_width(text_size, text) > 0.85 * width:
        text_size -= 1
    left, top, right, bottom = font(text_size).getbbox(text, anchor="mm")
    if right - left > 0.9 * width or bottom - top > 0.9 * height:
        width, height = ctx.at_least(
            max(width, (right - left) / 0.9), max(height, (bottom - top) / 0.9), (1.0, 1.0)
        )
    background = (rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255))
    image = Image.new("RGB", (width, height), background)
    # a random centre that keeps the ink at least 2 px inside the canvas
    x = rng.uniform(min(2 - left, width / 2), max(width - 2 - right, width / 2))
    y = rng.uniform(min(2 - top, height / 2), max(height - 2 - bottom, height / 2))
    ImageDraw.Draw(image).text(
        (x, y), text, font=font(text_size), fill=contrasting_ink(rng, background), anchor="mm"
    )
    return image


def gradient(size: tuple[int, int], start: RGB, end: RGB, horizontal: bool) -> Image.Image:
    """A linear colour gradient from `start` to `end`."""
    ramp = Image.linear_gradient("L")
    if horizontal:
        ramp = ramp.rotate(90, expand=True).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    mask = ramp.resize(size, Image.Resampling.BILINEAR)
    return Image.composite(Image.new("RGB", size, end), Image.new("RGB", size, start), mask)


def to_png(image: Image.Image) -> bytes:
    """Fast PNG encoding: curation speed matters more than file size here."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=1)
    return buffer.getvalue()
