"""`syn_text_rich`: reading text, tables and charts, from one glyph (tier 0) to chart arithmetic (tier 2)."""

from __future__ import annotations

from PIL import Image

from mm15.data.synthetic.charts import render_bar_chart
from mm15.data.synthetic.context import Context, Draft, image_prompt
from mm15.data.synthetic.drawing import font_size, text_card
from mm15.data.synthetic.tables import random_table, render_table
from mm15.data.synthetic.words import SHORT_WORDS

# Letters and digits that no font confuses with each other (no I/1, O/0, S/5, Z/2).
GLYPHS = "ABCDEFGHJKLMNPRTUVWXY346789"


def text_rich(ctx: Context) -> Draft:
    tasks = {0: (read_glyph, read_number), 1: (read_word, table_cell), 2: (chart_value, chart_sum)}[ctx.tier]
    return ctx.rng.choice(tasks)(ctx)


def read_glyph(ctx: Context) -> Draft:
    glyph = ctx.rng.choice(GLYPHS)
    question = ctx.rng.choice(("What character is shown in the image?", "Which letter or digit is this?"))
    return Draft("read_glyph", image_prompt(question), glyph, [_text_image(ctx, glyph, (0.4, 0.6))])


def read_number(ctx: Context) -> Draft:
    number = str(ctx.rng.randint(10, 99))
    question = ctx.rng.choice(("What number is written in the image?", "Read the number."))
    return Draft("read_number", image_prompt(question), number, [_text_image(ctx, number, (0.3, 0.45))])


def read_word(ctx: Context) -> Draft:
    word = ctx.rng.choice(SHORT_WORDS)
    question = ctx.rng.choice(("What word is written in the image?", "Read the word in the image."))
    return Draft("read_word", image_prompt(question), word, [_text_image(ctx, word, (0.2, 0.3))])


def table_cell(ctx: Context) -> Draft:
    rng = ctx.rng
    table = random_table(rng, rng.randint(2, 4), rng.randint(2, 3))
    row = rng.choice(table.rows)
    column = rng.choice(table.header[1:])
    question = f"In the table, what is the {column} of '{row[0]}'? Answer with a number."
    return Draft(
        "table_cell", image_prompt(question), table.cell(row[0], column), [render_table(ctx, table, 0.11)]
    )


def chart_value(ctx: Context) -> Draft:
    rng = ctx.rng
    labels, values = _chart_data(ctx)
    k = rng.randrange(len(labels))
    question = f"What is the value of the bar labelled '{labels[k]}'? Answer with a number."
    return Draft(
        "chart_value", image_prompt(question), str(values[k]), [render_bar_chart(ctx, labels, values)]
    )


def chart_sum(ctx: Context) -> Draft:
    labels, values = _chart_data(ctx)
    question = "What is the sum of all the values in the chart? Answer with a number."
    return Draft(
        "chart_sum", image_prompt(question), str(sum(values)), [render_bar_chart(ctx, labels, values)]
    )


def _chart_data(ctx: Context) -> tuple[list[str], list[int]]:
    labels = ctx.rng.sample(SHORT_WORDS, ctx.rng.randint(2, 4))
    return labels, [ctx.rng.randint(1, 20) for _ in labels]


def _text_image(ctx: Context, text: str, height_fraction: tuple[float, float]) -> Image.Image:
    return text_card(ctx, text, font_size(ctx.base, ctx.rng.uniform(*height_fraction)))
