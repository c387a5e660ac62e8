"""OCR sources standing in for the paper's four CPT datasets: PDFA, IDL, RenderedText, DocStruct."""

from __future__ import annotations

import math

from PIL import Image, ImageDraw, ImageStat

from mm15.data.record import Box
from mm15.data.synthetic.charts import render_bar_chart
from mm15.data.synthetic.context import Context, Draft, image_prompt
from mm15.data.synthetic.drawing import (
    SHAPES,
    XYXY,
    contrasting_ink,
    draw_shape,
    font,
    font_size,
    gradient,
    jitter,
    text_width,
)
from mm15.data.synthetic.pages import Page, layout_page, scanned, wrap
from mm15.data.synthetic.scenes import place_boxes
from mm15.data.synthetic.tables import Table, random_table, render_table
from mm15.data.synthetic.words import SHORT_WORDS, WORDS

TRANSCRIBE = (
    "Transcribe the text.",
    "Read all the text in the image.",
    "Transcribe the document in reading order.",
    "What does this page say? Write out its text.",
)
READ_SCENE = ("What text is written in the image?", "Read the text in the image.", "Transcribe the text.")
TABLE_TO_MARKDOWN = ("Convert the table to markdown.", "Transcribe this table as a markdown table.")
CHART_TO_MARKDOWN = (
    "Convert the chart to a markdown table of label and value.",
    "Extract the chart's data as a markdown table.",
)


def pdfa(ctx: Context) -> Draft:
    """A born-digital page: clean white paper, crisp text."""
    rng = ctx.rng
    ink = jitter(rng, (15, 15, 15), 10)
    heading = ink if rng.random() < 0.6 else jitter(rng, (20, 50, 120), 20)
    page = layout_page(ctx, "RGB", jitter(rng, (252, 252, 252), 3), ink, heading)
    return _page_draft(ctx, page)


def idl(ctx: Context) -> Draft:
    """A scanned page: grey paper, slight skew, blur and noise that grow with the tier."""
    rng = ctx.rng
    paper, ink = rng.randint(200, 238), rng.randint(15, 70)
    page = layout_page(ctx, "L", paper, ink, ink)
    page = scanned(page, rng, strength=(0.3, 0.6, 1.0)[ctx.tier], paper=paper)
    return _page_draft(ctx, page)


def _page_draft(ctx: Context, page: Page) -> Draft:
    return Draft(
        task="transcribe",
        prompt=image_prompt(ctx.rng.choice(TRANSCRIBE)),
        answer=page.transcript,
        images=[page.image],
        boxes=[_box(box, page.image.size) for box in page.boxes],
        meta={"lines": page.lines},
    )


def renderedtext(ctx: Context) -> Draft:
    """A word or short phrase over a plain, gradient or cluttered background."""
    rng, tier = ctx.rng, ctx.tier
    text = _phrase(ctx)
    width, height = ctx.size()
    text_size = font_size(ctx.base, rng.uniform(0.14, 0.3) - 0.04 * tier)
    lines = wrap(text, text_size, 0.9 * width)
    while text_size > 10 and (len(lines) > 2 or _widest(lines, text_size) > 0.9 * width):
        text_size -= 1
        lines = wrap(text, text_size, 0.9 * width)
    step = round(text_size * 1.25)
    block_w, block_h = _widest(lines, text_size), step * len(lines)
    if block_w > 0.9 * width or block_h > 0.9 * height:  # small base sizes: grow the canvas to the text
        width, height = ctx.at_least(max(width, block_w / 0.9), max(height, block_h / 0.9), (1.0, 1.0))
    size = (width, height)

    dark = rng.random() < 0.35
    low, high = (0, 110) if dark else (150, 255)
    colours = [tuple(rng.randint(low, high) for _ in range(3)) for _ in range(2)]
    image = (
        gradient(size, colours[0], colours[1], rng.random() < 0.5)
        if tier
        else Image.new("RGB", size, colours[0])
    )
    if tier == 2:
        draw = ImageDraw.Draw(image)
        for box in place_boxes(rng, size, rng.randint(2, 5), 9, scale=(0.5, 1.0)):
            draw_shape(draw, rng.choice(SHAPES), box, tuple(rng.randint(low, high) for _ in range(3)))

    x, y = rng.uniform(2, max(2, width - block_w - 2)), rng.uniform(2, max(2, height - block_h - 2))
    region = image.crop((int(x), int(y), int(x + block_w) + 1, int(y + block_h) + 1))
    background = tuple(round(v) for v in ImageStat.Stat(region).mean)
    ink = contrasting_ink(rng, background)
    stroke = 1 if tier and rng.random() < 0.5 else 0
    draw = ImageDraw.Draw(image)
    boxes = []
    for k, line in enumerate(lines):
        xy = (x, y + k * step)
        draw.text(xy, line, font=font(text_size), fill=ink, stroke_width=stroke, stroke_fill=background)
        boxes.append(_box(draw.textbbox(xy, line, font=font(text_size), stroke_width=stroke), size))
    return Draft("read_text", image_prompt(rng.choice(READ_SCENE)), text, [image], boxes, {"lines": lines})


def _widest(lines: list[str], size: int) -> float:
    return max(text_width(size, line) for line in lines)


def _phrase(ctx: Context) -> str:
    rng = ctx.rng
    words = [rng.choice(SHORT_WORDS)] if ctx.tier == 0 else rng.choices(WORDS, k=rng.randint(2, 2 + ctx.tier))
    style = rng.random()
    if style < 0.2:
        return " ".join(words).upper()
    if style < 0.6:
        return " ".join(word.capitalize() for word in words)
    return " ".join(words)


# rows (low, high), columns (low, high) and largest value, per tier
_TABLE_SIZES = {0: (2, 3, 2, 3, 99), 1: (3, 5, 3, 4, 999), 2: (5, 7, 4, 4, 9999)}


def docstruct(ctx: Context) -> Draft:
    """A table or a bar chart, transcribed as a markdown table."""
    rng, tier = ctx.rng, ctx.tier
    if tier == 0 or rng.random() < 0.5:
        low_rows, high_rows, low_cols, high_cols, max_value = _TABLE_SIZES[tier]
        table = random_table(
            rng, rng.randint(low_rows, high_rows), rng.randint(low_cols, high_cols), max_value
        )
        image = render_table(ctx, table, size_fraction=rng.uniform(0.08, 0.1))
        return Draft("table_markdown", image_prompt(rng.choice(TABLE_TO_MARKDOWN)), table.markdown(), [image])
    labels = rng.sample(SHORT_WORDS, rng.randint(3, 4) if tier == 1 else rng.randint(5, 6))
    values = [rng.randint(1, 100) for _ in labels]
    image = render_bar_chart(ctx, labels, values)
    table = Table(
        ["label", "value"], [[label, str(value)] for label, value in zip(labels, values, strict=True)]
    )
    return Draft("chart_markdown", image_prompt(rng.choice(CHART_TO_MARKDOWN)), table.markdown(), [image])


def _box(xyxy: XYXY, size: tuple[int, int]) -> Box:
    """Integer pixel box around the ink, clipped to the canvas."""
    x1, y1, x2, y2 = xyxy
    return Box(
        0,
        max(0, math.floor(x1)),
        max(0, math.floor(y1)),
        min(size[0], math.ceil(x2)),
        min(size[1], math.ceil(y2)),
    )
