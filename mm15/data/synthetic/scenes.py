"""Scenes of coloured shapes: placement without overlap, rendering and plain-English naming."""

from __future__ import annotations

import math
import random
from collections.abc import Collection
from dataclasses import dataclass

from PIL import Image, ImageDraw

from mm15.data.synthetic.drawing import BACKGROUNDS, COLOURS, SHAPES, XYXY, draw_shape, jitter

COLOUR_NAMES = tuple(COLOURS)
BACKGROUND_NAMES = tuple(BACKGROUNDS)

_GAP = 1  # pixels kept free at each cell edge, so neighbouring shapes never touch
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


@dataclass(frozen=True)
class Shape:
    """One shape of a scene; `box` is its pixel box [x1, x2) x [y1, y2)."""

    kind: str
    colour: str
    box: XYXY

    @property
    def name(self) -> str:
        return f"{self.colour} {self.kind}"

    @property
    def centre(self) -> tuple[float, float]:
        x1, y1, x2, y2 = self.box
        return (x1 + x2) / 2, (y1 + y2) / 2


@dataclass
class Scene:
    size: tuple[int, int]
    background: str
    shapes: list[Shape]

    def render(self, rng: random.Random) -> Image.Image:
        image = Image.new("RGB", self.size, jitter(rng, BACKGROUNDS[self.background], 6))
        draw = ImageDraw.Draw(image)
        for shape in self.shapes:
            draw_shape(draw, shape.kind, shape.box, jitter(rng, COLOURS[shape.colour]))
        return image


def place_boxes(
    rng: random.Random,
    size: tuple[int, int],
    n: int,
    cells: int,
    scale: tuple[float, float] = (0.55, 0.9),
    min_side: int = 12,
) -> list[XYXY]:
    """`n` non-overlapping square boxes, each inside its own cell of a grid of about `cells` cells.

    One box per cell keeps shapes apart, so boxes in different columns are fully left or right of
    each other and spatial questions have a clear answer.
    """
    width, height = size
    cols = max(1, round(math.sqrt(max(cells, n) * width / height)))
    rows = max(1, math.ceil(max(cells, n) / cols))
    cell_w, cell_h = width / cols, height / rows
    limit = int(min(cell_w, cell_h)) - 2 * _GAP
    boxes = []
    for cell in rng.sample(range(rows * cols), n):
        row, col = divmod(cell, cols)
        side = min(limit, max(min_side, int(limit * rng.uniform(*scale))))
        x = int(col * cell_w + _GAP + rng.uniform(0, cell_w - 2 * _GAP - side))
        y = int(row * cell_h + _GAP + rng.uniform(0, cell_h - 2 * _GAP - side))
        boxes.append((x, y, x + side, y + side))
    return boxes


def random_kind_colour(rng: random.Random, avoid: Collection[tuple[str, str]] = ()) -> tuple[str, str]:
    """A random (kind, colour) pair not in `avoid`."""
    while True:
        pair = rng.choice(SHAPES), rng.choice(COLOUR_NAMES)
        if pair not in avoid:
            return pair


def random_scene(
    rng: random.Random, size: tuple[int, int], n: int, cells: int, scale: tuple[float, float] = (0.55, 0.9)
) -> Scene:
    """`n` shapes of random kinds and colours on a random named background."""
    shapes = [Shape(*random_kind_colour(rng), box) for box in place_boxes(rng, size, n, cells, scale)]
    return Scene(size, rng.choice(BACKGROUND_NAMES), shapes)


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def count_phrase(count: int, noun: str) -> str:
    """'a red circle', 'three red circles'."""
    if count == 1:
        return f"{article(noun)} {noun}"
    return f"{NUMBER_WORDS[count] if count < len(NUMBER_WORDS) else count} {noun}s"


def join_words(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def left_to_right(shapes: list[Shape]) -> list[Shape]:
    return sorted(shapes, key=lambda shape: (shape.box[0], shape.box[1]))
