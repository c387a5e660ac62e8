"""Document pages: title and paragraphs laid out in one or two columns, line boxes, scan effects."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from mm15.data.synthetic.context import Context
from mm15.data.synthetic.drawing import XYXY, font, font_size, text_width
from mm15.data.synthetic.words import sentence, title

Colour = int | tuple[int, int, int]  # a grey level for "L" pages, RGB otherwise

# Body text size (fraction of the base side), paragraphs, chances of two columns and of a figure, per tier.
_TIERS = {
    0: dict(body=(0.10, 0.12), paragraphs=(1, 2), sentences=(1, 2), columns=0.0, figure=0.3),
    1: dict(body=(0.085, 0.1), paragraphs=(2, 3), sentences=(1, 3), columns=0.0, figure=0.4),
    2: dict(body=(0.078, 0.09), paragraphs=(3, 6), sentences=(2, 4), columns=0.6, figure=0.4),
}


@dataclass
class Page:
    """A rendered page, its text lines in reading order, their ink boxes, and the transcript."""

    image: Image.Image
    lines: list[str]
    boxes: list[XYXY]
    transcript: str


def wrap(text: str, size: int, max_width: float) -> list[str]:
    """Greedy word wrap at `max_width` pixels."""
    lines: list[str] = []
    current: list[str] = []
    used = 0.0
    space = text_width(size, " ")
    for word in text.split():
        width = text_width(size, word)
        if current and used + space + width > max_width:
            lines.append(" ".join(current))
            current, used = [], 0.0
        used += (space if current else 0.0) + width
        current.append(word)
    if current:
        lines.append(" ".join(current))
    return lines


def layout_page(ctx: Context, mode: str, paper: Colour, ink: Colour, heading_ink: Colour) -> Page:
    """Lay out a title and paragraphs on a page of `ctx.page_size()`, in reading order."""
    rng, tier = ctx.rng, _TIERS[ctx.tier]
    width, height = ctx.page_size()
    image = Image.new(mode, (width, height), paper)
    draw = ImageDraw.Draw(image)
    body = font_size(ctx.base, rng.uniform(*tier["body"]))
    heading = round(body * rng.uniform(1.4, 1.8))
    margin = round(width * rng.uniform(0.06, 0.1))
    columns = 2 if rng.random() < tier["columns"] and width - 2 * margin >= 200 else 1
    gutter = round(width * 0.05)
    column_width = (width - 2 * margin - (columns - 1) * gutter) / columns

    lines: list[str] = []
    boxes: list[XYXY] = []
    blocks: list[list[str]] = []  # paragraphs as drawn, for the transcript
    y = margin + height * rng.uniform(0.0, 0.1)
    centred = rng.random() < 0.4
    for line in wrap(title(rng), heading, width - 2 * margin):
        x = (width - text_width(heading, line)) / 2 if centred else margin
        boxes.append(_draw_line(draw, (x, y), line, heading, heading_ink))
        lines.append(line)
        y += heading * 1.3
    blocks.append(list(lines))
    if rng.random() < 0.4:  # a rule under the title
        draw.line((margin, y, width - margin, y), fill=heading_ink, width=1)
    y += body * 0.8

    step, gap = body * 1.35, body * 0.6
    paragraphs = [
        wrap(" ".join(sentence(rng) for _ in range(rng.randint(*tier["sentences"]))), body, column_width)
        for _ in range(rng.randint(*tier["paragraphs"]))
    ]
    top, column, bottom = y, 0, height - margin
    if columns == 2:  # balance the columns instead of filling the first one to the bottom
        bottom = min(bottom, top + (sum(map(len, paragraphs)) * step + len(paragraphs) * gap) / 2 + step)
    figure_before = rng.randrange(len(paragraphs)) if columns == 1 and rng.random() < tier["figure"] else -1
    for k, paragraph in enumerate(paragraphs):
        if k == figure_before:  # a figure: a block of the page without text
            figure_h = height * rng.uniform(0.12, 0.25)
            if y + figure_h < bottom - step:
                shade = _darker(paper, rng.randint(25, 60))
                draw.rectangle(
                    (margin, y, width - margin, y + figure_h), fill=shade, outline=_darker(shade, 40)
                )
                y += figure_h + gap
        block: list[str] = []
        for line in paragraph:
            if y + step > bottom:
                if column + 1 == columns:
                    break
                column, y, bottom = column + 1, top, height - margin
            x = margin + column * (column_width + gutter)
            boxes.append(_draw_line(draw, (x, y), line, body, ink))
            lines.append(line)
            block.append(line)
            y += step
        if block:
            blocks.append(block)
        y += gap
    transcript = "\n\n".join("\n".join(block) for block in blocks)
    return Page(image, lines, boxes, transcript)


def _darker(colour: Colour, amount: int) -> Colour:
    if isinstance(colour, int):
        return max(0, colour - amount)
    return tuple(max(0, c - amount) for c in colour)  # type: ignore[return-value]


def _draw_line(
    draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, size: int, fill: Colour
) -> XYXY:
    draw.text(xy, text, font=font(size), fill=fill)
    return draw.textbbox(xy, text, font=font(size))


def scanned(page: Page, rng: random.Random, strength: float, paper: int) -> Page:
    """The page as a greyscale scan: skew, blur, uneven light and dust; boxes follow the skew."""
    image = page.image
    angle = rng.uniform(-2.5, 2.5) * strength
    image = image.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=paper)
    boxes = [rotate_box(box, angle, image.size) for box in page.boxes]
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.2, 0.7) * strength + 0.2))
    noise = np.random.default_rng(rng.getrandbits(64))
    pixels = np.asarray(image, dtype=np.int16)
    # lighting that fades across the page, constant down each column (cheap to compress)
    pixels = pixels + np.linspace(0, rng.uniform(-25, 25) * strength, pixels.shape[1]).astype(np.int16)
    # sparse dark dust instead of dense sensor noise, which would triple the PNG size
    dust = noise.random(pixels.shape) < 0.01 + 0.03 * strength
    pixels[dust] -= noise.integers(20, 90, int(dust.sum()), dtype=np.int16)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    return Page(image, page.lines, boxes, page.transcript)


def rotate_box(box: XYXY, angle: float, size: tuple[int, int]) -> XYXY:
    """The axis-aligned box around `box` after `Image.rotate(angle)` (counter-clockwise, about the centre)."""
    width, height = size
    cx, cy = width / 2, height / 2
    cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    xs, ys = [], []
    for x, y in ((box[0], box[1]), (box[2], box[1]), (box[0], box[3]), (box[2], box[3])):
        dx, dy = x - cx, y - cy
        xs.append(cx + dx * cos + dy * sin)
        ys.append(cy - dx * sin + dy * cos)
    return (
        max(0, math.floor(min(xs))),
        max(0, math.floor(min(ys))),
        min(width, math.ceil(max(xs))),
        min(height, math.ceil(max(ys))),
    )
