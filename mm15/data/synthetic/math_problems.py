"""`syn_math`: arithmetic shown as an image, counting and adding, rectangle areas, reading a line plot."""

from __future__ import annotations

from PIL import Image, ImageDraw

from mm15.data.synthetic.charts import render_line_plot
from mm15.data.synthetic.context import Context, Draft, image_prompt
from mm15.data.synthetic.drawing import (
    COLOURS,
    INK,
    PAPERS,
    SHAPES,
    centred_text,
    draw_shape,
    font,
    font_size,
    jitter,
    text_card,
)
from mm15.data.synthetic.scenes import COLOUR_NAMES, place_boxes

NUMBER = " Answer with a number."


def math_problem(ctx: Context) -> Draft:
    tasks = {0: (arithmetic,), 1: (rectangle, count_add), 2: (plot_value, arithmetic, rectangle)}[ctx.tier]
    return ctx.rng.choice(tasks)(ctx)


def arithmetic(ctx: Context) -> Draft:
    """Tier 0: `a + b` or `a - b` with one-digit numbers; tier 2: `(a + b) * c` or `a * b - c`."""
    rng = ctx.rng
    if ctx.tier == 0:
        a, b = rng.randint(0, 9), rng.randint(0, 9)
        expression, value = (
            (f"{a} + {b}", a + b) if rng.random() < 0.5 else (f"{max(a, b)} - {min(a, b)}", abs(a - b))
        )
    else:
        a, b, c = rng.randint(1, 9), rng.randint(1, 9), rng.randint(2, 5)
        if rng.random() < 0.5:
            expression, value = f"({a} + {b}) * {c}", (a + b) * c
        else:
            c = rng.randint(0, a * b)
            expression, value = f"{a} * {b} - {c}", a * b - c
    image = text_card(ctx, f"{expression} = ?", font_size(ctx.base, rng.uniform(0.16, 0.24)))
    question = rng.choice(("Solve the problem in the image.", "What is the answer to the problem shown?"))
    return Draft(
        "arithmetic", image_prompt(question + NUMBER), str(value), [image], meta={"expression": expression}
    )


def rectangle(ctx: Context) -> Draft:
    """A rectangle drawn to scale with labelled sides; area (tier 1) or perimeter (tier 2)."""
    rng = ctx.rng
    a, b = rng.randint(2, 12), rng.randint(2, 12)
    width, height = ctx.size(width=(1.1, 1.5), height=(0.9, 1.2))
    image = Image.new("RGB", (width, height), jitter(rng, rng.choice(PAPERS), 6))
    draw = ImageDraw.Draw(image)
    label = font_size(ctx.base, 0.09)
    # to scale, at a random size and place; the side labels go below and to the right
    scale = min((width - 5 * label) / a, (height - 3 * label) / b) * rng.uniform(0.45, 1.0)
    x0 = rng.uniform(0.5 * label, width - a * scale - 4.5 * label)
    y0 = rng.uniform(0.5 * label, height - b * scale - 2.5 * label)
    fill = jitter(rng, COLOURS[rng.choice(COLOUR_NAMES)], 20)
    draw.rectangle((x0, y0, x0 + a * scale, y0 + b * scale), fill=fill, outline=INK, width=2)
    centred_text(draw, (x0 + a * scale / 2, y0 + b * scale + label), f"{a} cm", label, INK)
    right_label = (x0 + a * scale + label / 3, y0 + b * scale / 2)
    draw.text(right_label, f"{b} cm", font=font(label), fill=INK, anchor="lm")
    if ctx.tier == 1:
        question, answer = "What is the area of the rectangle in square centimetres?", a * b
    else:
        question, answer = "What is the perimeter of the rectangle in centimetres?", 2 * (a + b)
    return Draft("geometry", image_prompt(question + NUMBER), str(answer), [image], meta={"sides": [a, b]})


def count_add(ctx: Context) -> Draft:
    """Two framed boxes of 1-5 shapes each; how many shapes in both together."""
    rng = ctx.rng
    width, height = ctx.size(width=(1.4, 1.9), height=(0.8, 1.1))
    image = Image.new("RGB", (width, height), jitter(rng, (250, 250, 250), 5))
    draw = ImageDraw.Draw(image)
    counts = [rng.randint(1, 5), rng.randint(1, 5)]
    half, pad = width / 2, 4
    for k, count in enumerate(counts):
        x0 = round(k * half + pad)
        frame = (x0, pad, round((k + 1) * half - pad), height - pad)
        draw.rectangle(frame, outline=INK, width=2)
        inner = (frame[2] - frame[0] - 6, frame[3] - frame[1] - 6)
        for x1, y1, x2, y2 in place_boxes(rng, inner, count, 6):
            box = (x1 + frame[0] + 3, y1 + frame[1] + 3, x2 + frame[0] + 3, y2 + frame[1] + 3)
            draw_shape(draw, rng.choice(SHAPES), box, jitter(rng, COLOURS[rng.choice(COLOUR_NAMES)]))
    question = "How many shapes are there in the two boxes altogether?"
    return Draft(
        "count_add", image_prompt(question + NUMBER), str(sum(counts)), [image], meta={"counts": counts}
    )


def plot_value(ctx: Context) -> Draft:
    rng = ctx.rng
    ys = [rng.randint(0, 10) for _ in range(rng.randint(4, 6))]
    x = rng.randrange(len(ys))
    question = f"In the line plot, what is the value of y at x = {x}?"
    image = render_line_plot(ctx, ys, 10)
    return Draft("plot_value", image_prompt(question + NUMBER), str(ys[x]), [image], meta={"ys": ys, "x": x})
