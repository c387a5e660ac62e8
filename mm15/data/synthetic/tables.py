"""Small tables: random content, Pillow rendering with ruled cells, and their markdown."""

from __future__ import annotations

import random
from dataclasses import dataclass

from PIL import Image, ImageDraw

from mm15.data.synthetic.context import Context
from mm15.data.synthetic.drawing import font, font_size, jitter, text_width
from mm15.data.synthetic.words import distinct_words

_KEY_COLUMNS = ("item", "name", "city", "team", "product", "place")
_VALUE_COLUMNS = ("price", "count", "score", "year", "size", "weight", "age", "total", "stock", "rank")


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]

    def markdown(self) -> str:
        lines = [self.header, ["---"] * len(self.header), *self.rows]
        return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)

    def cell(self, row_label: str, column: str) -> str:
        row = next(row for row in self.rows if row[0] == row_label)
        return row[self.header.index(column)]


def random_table(rng: random.Random, n_rows: int, n_cols: int, max_value: int = 99) -> Table:
    """A table keyed by distinct words in its first column, with numbers in the others."""
    header = [rng.choice(_KEY_COLUMNS), *rng.sample(_VALUE_COLUMNS, n_cols - 1)]
    rows = [
        [label, *(str(rng.randint(1, max_value)) for _ in range(n_cols - 1))]
        for label in distinct_words(rng, n_rows)
    ]
    return Table(header, rows)


def render_table(ctx: Context, table: Table, size_fraction: float = 0.09) -> Image.Image:
    """The table drawn with ruled cells and a shaded header row, on a canvas a little larger than it."""
    rng = ctx.rng
    size = font_size(ctx.base, size_fraction)
    pad = max(3, size // 2)
    columns = list(zip(table.header, *table.rows, strict=True))
    widths = [max(text_width(size, text) for text in column) + 2 * pad for column in columns]
    row_height = round(size * 1.2) + 2 * pad
    table_w, table_h = round(sum(widths)), row_height * (len(table.rows) + 1)
    canvas = ctx.at_least(table_w + 2 * pad, table_h + 2 * pad, slack=(1.05, 1.4))
    paper = jitter(rng, (250, 250, 250), 5)
    image = Image.new("RGB", canvas, paper)
    draw = ImageDraw.Draw(image)
    x0 = rng.randint(pad, canvas[0] - table_w - pad)
    y0 = rng.randint(pad, canvas[1] - table_h - pad)
    rule = jitter(rng, (90, 90, 90), 30)
    draw.rectangle((x0, y0, x0 + table_w, y0 + row_height), fill=jitter(rng, (215, 225, 240), 15))
    for r, cells in enumerate([table.header, *table.rows]):
        x = x0
        y = y0 + r * row_height
        for cell, width in zip(cells, widths, strict=True):
            draw.text((x + pad, y + pad), cell, font=font(size), fill=(20, 20, 20))
            x += width
    for r in range(len(table.rows) + 2):
        draw.line((x0, y0 + r * row_height, x0 + table_w, y0 + r * row_height), fill=rule)
    x = x0
    for width in [0, *widths]:
        x += width
        draw.line((round(x), y0, round(x), y0 + table_h), fill=rule)
    return image
