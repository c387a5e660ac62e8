"""Grounding text: pixel boxes and points <-> integers in [0, 1000) over the whole image.

The contract (docs/ARCHITECTURE.md "Contracts", docs/RECIPE.md section 5): boxes are written `[x1, y1, x2, y2]` and
points `[x, y]`, each coordinate an integer in [0, 1000) relative to the *whole* image, never to
a tile, so the text does not change with the split grid.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

GRID = 1000  # coordinates are integers in [0, GRID)

_NUM = r"\s*(\d{1,4})\s*"
_BOX = re.compile(r"\[" + ",".join([_NUM] * 4) + r"\]")
_POINT = re.compile(r"\[" + ",".join([_NUM] * 2) + r"\]")


def to_grid(value: float, size: float) -> int:
    """A pixel coordinate along a side of `size` pixels -> an integer in [0, 1000)."""
    if size <= 0:
        raise ValueError(f"image side must be positive, got {size}")
    return min(max(int(value * GRID / size), 0), GRID - 1)


def from_grid(value: int, size: float) -> float:
    """An integer in [0, 1000) -> the pixel coordinate at the centre of its bucket."""
    return (value + 0.5) * size / GRID


def normalise_box(box: Sequence[float], width: float, height: float) -> tuple[int, int, int, int]:
    """Pixel box (x1, y1, x2, y2) -> integers in [0, 1000)."""
    x1, y1, x2, y2 = box
    return to_grid(x1, width), to_grid(y1, height), to_grid(x2, width), to_grid(y2, height)


def box_to_text(box: Sequence[float], width: float, height: float) -> str:
    """Pixel box (x1, y1, x2, y2) -> `[x1, y1, x2, y2]` text."""
    return "[{}, {}, {}, {}]".format(*normalise_box(box, width, height))


def point_to_text(x: float, y: float, width: float, height: float) -> str:
    """Pixel point -> `[x, y]` text."""
    return f"[{to_grid(x, width)}, {to_grid(y, height)}]"


def parse_boxes(text: str) -> list[tuple[int, int, int, int]]:
    """Every `[x1, y1, x2, y2]` in `text` with all values in [0, 1000), in order."""
    boxes = [tuple(int(v) for v in m.groups()) for m in _BOX.finditer(text)]
    return [b for b in boxes if all(v < GRID for v in b)]


def parse_points(text: str) -> list[tuple[int, int]]:
    """Every `[x, y]` in `text` with both values in [0, 1000), in order (boxes are not points)."""
    points = [tuple(int(v) for v in m.groups()) for m in _POINT.finditer(text)]
    return [p for p in points if all(v < GRID for v in p)]


def text_to_boxes(text: str, width: float, height: float) -> list[tuple[float, float, float, float]]:
    """Boxes in `text` mapped back to pixels of a `width x height` image."""
    return [
        (from_grid(x1, width), from_grid(y1, height), from_grid(x2, width), from_grid(y2, height))
        for x1, y1, x2, y2 in parse_boxes(text)
    ]


def text_to_points(text: str, width: float, height: float) -> list[tuple[float, float]]:
    """Points in `text` mapped back to pixels of a `width x height` image."""
    return [(from_grid(x, width), from_grid(y, height)) for x, y in parse_points(text)]
