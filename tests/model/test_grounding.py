import io

import pytest
import torch
from PIL import Image, ImageDraw

from mm15.model.grounding import (
    box_to_text,
    from_grid,
    normalise_box,
    parse_boxes,
    parse_points,
    point_to_text,
    text_to_boxes,
    text_to_points,
    to_grid,
)
from mm15.model.image_processing import CLIP_MEAN, CLIP_STD, MM15ImageProcessor
from mm15.model.splitting import UNSPLIT, TileLayout


def test_coordinates_are_integers_in_0_to_999_over_the_whole_image():
    assert to_grid(0, 640) == 0
    assert to_grid(320, 640) == 500
    assert to_grid(640, 640) == 999  # the right edge stays inside [0, 1000)
    assert to_grid(-5, 640) == 0 and to_grid(10_000, 640) == 999
    assert normalise_box((64, 48, 320, 480), 640, 480) == (100, 100, 500, 999)
    assert box_to_text((64, 48, 320, 240), 640, 480) == "[100, 100, 500, 500]"
    assert point_to_text(320, 120, 640, 480) == "[500, 250]"
    with pytest.raises(ValueError):
        to_grid(1, 0)


def test_parse_boxes_and_points_from_answers():
    text = (
        "The cat [12, 30, 400, 998] and the dog [500,500,999,999]; a point [250, 750]; bad [1, 2, 1000, 4]."
    )
    assert parse_boxes(text) == [(12, 30, 400, 998), (500, 500, 999, 999)]
    assert parse_points(text) == [(250, 750)]  # a box is not a point, 1000 is out of range
    assert parse_boxes("no coordinates here") == []


def test_pixel_round_trip_is_within_one_grid_step():
    width, height = 1234, 567
    box = (100.0, 50.0, 1000.0, 500.0)
    back = text_to_boxes(box_to_text(box, width, height), width, height)[0]
    for value, restored, side in zip(box, back, (width, height, width, height), strict=True):
        assert abs(value - restored) <= side / 1000
    ((x, y),) = text_to_points(point_to_text(617, 283.5, width, height), width, height)
    assert abs(x - 617) <= width / 1000 and abs(y - 283.5) <= height / 1000
    assert from_grid(0, 1000) == 0.5


def red_box_image(width: int, height: int, box: tuple[int, int, int, int]) -> bytes:
    image = Image.new("RGB", (width, height), "white")
    ImageDraw.Draw(image).rectangle(box, fill=(255, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def is_red(view: torch.Tensor, x: float, y: float) -> bool:
    mean, std = torch.tensor(CLIP_MEAN), torch.tensor(CLIP_STD)
    rgb = view[:, int(y), int(x)] * std + mean
    return bool(rgb[0] > 0.8 and rgb[1] < 0.2 and rgb[2] < 0.2)


@pytest.mark.parametrize(
    "processor",
    [
        MM15ImageProcessor(tile_size=64),  # dynamic (4, 9)
        MM15ImageProcessor(tile_size=64, split_mode="static"),  # 2x2 + overview
        MM15ImageProcessor(tile_size=64, split_mode="none"),  # one overview view
    ],
    ids=["dynamic", "static", "unsplit"],
)
def test_a_box_in_text_lands_on_its_pixels_in_the_tiles(processor):
    width, height, box = 300, 170, (100, 20, 260, 150)
    image = red_box_image(width, height, box)
    text = box_to_text(box, width, height)  # whole-image coordinates: the same for every grid
    assert text == "[333, 117, 866, 882]"
    views, grid = processor.split(image)
    layout = TileLayout(height, width, grid, processor.tile_size)
    x1, y1, x2, y2 = text_to_boxes(text, width, height)[0]
    inside = [(x1 + 4, y1 + 4), (x2 - 4, y2 - 4), ((x1 + x2) / 2, (y1 + y2) / 2), (x1 + 4, y2 - 4)]
    outside = [(x1 - 8, y1 + 10), (x2 + 8, y2 - 10), ((x1 + x2) / 2, y2 + 10)]
    for x, y in inside:
        index, tx, ty = layout.to_tile(x, y)
        assert is_red(views[index], tx, ty), (x, y, index)
    for x, y in outside:
        index, tx, ty = layout.to_tile(x, y)
        assert not is_red(views[index], tx, ty), (x, y, index)
    ox, oy = layout.to_overview((x1 + x2) / 2, (y1 + y2) / 2)
    assert is_red(views[-1], ox, oy)
    if grid != UNSPLIT:
        assert len({layout.to_tile(x, y)[0] for x, y in inside}) > 1  # the box spans tiles
