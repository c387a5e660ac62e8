"""Bar charts and line plots drawn with Pillow, with every value readable off the image."""

from __future__ import annotations

from PIL import Image, ImageDraw

from mm15.data.synthetic.context import Context
from mm15.data.synthetic.drawing import COLOURS, PAPERS, centred_text, font_size, jitter, text_width
from mm15.data.synthetic.scenes import COLOUR_NAMES

AXIS = (40, 40, 40)


def render_bar_chart(ctx: Context, labels: list[str], values: list[int]) -> Image.Image:
    """Vertical bars with their labels below and their values printed above, at a random place and scale."""
    rng = ctx.rng
    size = font_size(ctx.base, 0.085)
    slot = (max(text_width(size, label) for label in labels) + size) * rng.uniform(1.0, 1.3)
    margin = size
    plot_w = len(labels) * slot
    width, height = ctx.at_least(plot_w + 2 * margin, ctx.base * rng.uniform(1.0, 1.4), (1.0, 1.5))
    image = Image.new("RGB", (width, height), jitter(rng, rng.choice(PAPERS), 5))
    draw = ImageDraw.Draw(image)
    top = margin + 1.6 * size + rng.uniform(0, 0.2) * height
    bottom = height - margin - 1.4 * size - rng.uniform(0, 0.1) * height
    left = rng.uniform(margin, width - margin - plot_w)
    if rng.random() < 0.5:
        for k in range(1, 5):
            y = bottom - (bottom - top) * k / 4
            draw.line((left, y, left + plot_w, y), fill=jitter(rng, (215, 215, 215), 10))
    single = rng.random() < 0.5
    colour = rng.choice(COLOUR_NAMES)
    half_bar = slot * rng.uniform(0.2, 0.4)
    v_max = max(values)
    for k, (label, value) in enumerate(zip(labels, values, strict=True)):
        centre = left + (k + 0.5) * slot
        bar_top = bottom - (bottom - top) * value / v_max
        fill = jitter(rng, COLOURS[colour if single else COLOUR_NAMES[k % len(COLOUR_NAMES)]])
        draw.rectangle((centre - half_bar, bar_top, centre + half_bar, bottom), fill=fill)
        centred_text(draw, (centre, bar_top - 0.8 * size), str(value), size, AXIS)
        centred_text(draw, (centre, bottom + 0.9 * size), label, size, AXIS)
    draw.line((left, bottom, left + plot_w, bottom), fill=AXIS, width=2)
    return image


def render_line_plot(ctx: Context, ys: list[int], y_max: int) -> Image.Image:
    """A line through (x, ys[x]) for x = 0, 1, ... over a unit grid with labelled axes."""
    rng = ctx.rng
    size = font_size(ctx.base, 0.08)
    unit_y = max(size * 0.9, ctx.base * rng.uniform(0.08, 0.11))
    unit_x = max(size * 2.0, ctx.base * rng.uniform(0.2, 0.3))
    left, right, top, bottom = 2.2 * size, size, size, 2.0 * size
    width, height = ctx.at_least(
        left + right + unit_x * (len(ys) - 1), top + bottom + unit_y * y_max, (1.0, 1.1)
    )
    image = Image.new("RGB", (width, height), jitter(rng, (252, 252, 252), 3))
    draw = ImageDraw.Draw(image)
    unit_x = (width - left - right) / (len(ys) - 1)
    unit_y = (height - top - bottom) / y_max
    x_at = lambda x: left + x * unit_x  # noqa: E731
    y_at = lambda y: height - bottom - y * unit_y  # noqa: E731
    grid = jitter(rng, (215, 215, 215), 10)
    for y in range(y_max + 1):
        draw.line((x_at(0), y_at(y), x_at(len(ys) - 1), y_at(y)), fill=grid)
        if y % 2 == 0:
            centred_text(draw, (left - 1.0 * size, y_at(y)), str(y), size, AXIS)
    for x in range(len(ys)):
        draw.line((x_at(x), y_at(0), x_at(x), y_at(y_max)), fill=grid)
        centred_text(draw, (x_at(x), height - bottom + 0.9 * size), str(x), size, AXIS)
    draw.line((x_at(0), y_at(0), x_at(len(ys) - 1), y_at(0)), fill=AXIS, width=2)
    draw.line((x_at(0), y_at(0), x_at(0), y_at(y_max)), fill=AXIS, width=2)
    line = jitter(rng, COLOURS[rng.choice(COLOUR_NAMES)])
    points = [(x_at(x), y_at(y)) for x, y in enumerate(ys)]
    draw.line(points, fill=line, width=2)
    for px, py in points:
        draw.ellipse((px - 3, py - 3, px + 3, py + 3), fill=line)
    return image
