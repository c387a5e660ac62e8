"""Reading order of OCR lines: rows top to bottom, lines within a row left to right."""

from __future__ import annotations

from collections.abc import Sequence

Rect = tuple[float, float, float, float]  # x, y, width, height


def reading_order(rects: Sequence[Rect]) -> list[list[int]]:
    """Indices of `rects` grouped into rows, in reading order.

    A line joins the current row when its vertical centre is within half a line height (the
    larger of the two lines') of the centre of the row's first line; comparing with the first
    line, not the last, keeps a gently sloping page from chaining into one row.
    """
    rows: list[list[int]] = []
    for index in sorted(range(len(rects)), key=lambda i: (_centre_y(rects[i]), rects[i][0])):
        if rows:
            anchor = rects[rows[-1][0]]
            tolerance = 0.5 * max(anchor[3], rects[index][3])
            if abs(_centre_y(rects[index]) - _centre_y(anchor)) <= tolerance:
                rows[-1].append(index)
                continue
        rows.append([index])
    return [sorted(row, key=lambda i: (rects[i][0], rects[i][1])) for row in rows]


def _centre_y(rect: Rect) -> float:
    return rect[1] + rect[3] / 2
