import random

import pytest

from mm15.model.splitting import (
    UNSPLIT,
    SplitConfig,
    TileLayout,
    candidate_grids,
    fit_scale,
    image_token_count,
    padding_area,
    select_grid,
    tiles_per_image,
    view_slots,
)

GRIDS_4_9 = candidate_grids(4, 9)


def test_candidate_grids_are_the_18_grids_of_4_to_9_tiles():
    assert len(GRIDS_4_9) == 18
    assert set(GRIDS_4_9) == {(r, c) for r in range(1, 10) for c in range(1, 10) if 4 <= r * c <= 9}
    assert set(candidate_grids(1, 4)) == {(1, 1), (1, 2), (1, 3), (1, 4), (2, 1), (2, 2), (3, 1), (4, 1)}


@pytest.mark.parametrize("grid", GRIDS_4_9)
def test_an_image_the_exact_size_of_a_grid_selects_that_grid(grid):
    rows, cols = grid
    assert select_grid(rows * 672, cols * 672) == grid
    # a proportional, smaller image is upscaled into the same grid (no padding, fewest tiles)
    assert select_grid(rows * 600, cols * 600) == grid


@pytest.mark.parametrize(
    ("height", "width", "expected"),
    [
        (1, 1, (2, 2)),  # every grid upscales with no padding on the square ones: fewest tiles
        (672, 672, (2, 2)),
        (1, 10_000, (1, 9)),  # 1-pixel-high strip: the widest grid loses the least resolution
        (10_000, 1, (9, 1)),
        (100_000, 100_000, (3, 3)),  # huge square: the largest square grid
        (1000, 3000, (2, 4)),  # no grid fits without downscaling; 2x4 keeps s = 0.896
        (4000, 1000, (4, 1)),  # s = 0.672 for 4x1, 4x2, 5x1 ... 9x1: fewest tiles wins
        (1344, 2016, (2, 3)),
        (700, 1400, (2, 4)),  # upscaled with zero padding into 2x4 (1x2 is not a candidate)
    ],
)
def test_select_grid_edge_cases(height, width, expected):
    assert select_grid(height, width) == expected


def test_tie_on_padding_and_tiles_prefers_more_rows():
    # a square image pads 1x2 and 2x1 equally: more rows wins
    assert select_grid(100, 100, tile=672, n_min=2, n_max=2) == (2, 1)
    # a huge square image: 2x4 and 4x2 lose the same resolution: more rows wins
    assert select_grid(10_000, 10_000, tile=672, n_min=8, n_max=8) == (4, 2)


def test_select_grid_works_from_one_tile():
    assert select_grid(100, 100, tile=112, n_min=1, n_max=4) == (1, 1)
    assert select_grid(150, 130, tile=112, n_min=1, n_max=4) == (2, 2)
    assert select_grid(112, 448, tile=112, n_min=1, n_max=4) == (1, 4)


def test_select_grid_is_optimal_by_the_rule_on_random_sizes():
    rng = random.Random(0)
    for _ in range(300):
        h, w = rng.randint(1, 6000), rng.randint(1, 6000)
        chosen = select_grid(h, w)
        scales = {g: fit_scale(h, w, g, 672) for g in GRIDS_4_9}
        unscaled = [g for g in GRIDS_4_9 if scales[g] >= 1]
        if unscaled:
            assert chosen in unscaled
            assert padding_area(h, w, chosen, 672) == min(padding_area(h, w, g, 672) for g in unscaled)
        else:
            assert scales[chosen] == max(scales.values())


@pytest.mark.parametrize(("height", "width"), [(0, 10), (10, 0), (-1, 5)])
def test_select_grid_rejects_empty_images(height, width):
    with pytest.raises(ValueError, match="positive"):
        select_grid(height, width)


def test_split_config_validates():
    with pytest.raises(ValueError, match="n_min"):
        SplitConfig(n_min=5, n_max=4)
    with pytest.raises(ValueError, match="split mode"):
        SplitConfig(mode="sometimes")
    with pytest.raises(ValueError, match="static_grid"):
        SplitConfig(static_grid=(0, 2))


def test_grid_for_follows_mode_and_image_count():
    dynamic = SplitConfig()
    assert dynamic.grid_for(1000, 3000, n_images=1) == (2, 4)
    assert dynamic.grid_for(1000, 3000, n_images=2) == (2, 4)
    assert dynamic.grid_for(1000, 3000, n_images=3) == UNSPLIT  # splitting off at 3+ images
    assert SplitConfig(mode="static").grid_for(1000, 3000) == (2, 2)
    assert SplitConfig(mode="static", static_grid=(1, 3)).grid_for(5, 5) == (1, 3)
    assert SplitConfig(mode="none").grid_for(1000, 3000) == UNSPLIT
    assert SplitConfig().largest_grid() in {(3, 3), (1, 9), (9, 1)}
    assert image_token_count(SplitConfig().largest_grid(), 144) == 1440


def test_token_count_is_tiles_plus_overview():
    assert tiles_per_image(UNSPLIT) == 1
    assert tiles_per_image((2, 3)) == 7
    assert image_token_count(UNSPLIT, 144) == 144
    assert image_token_count((2, 2), 144) == 720  # the paper's static 4+1 split
    assert image_token_count((3, 3), 16) == 160


def test_view_slots_put_the_overview_after_or_before_the_tiles():
    views = list(range(7))  # a 2x3 image's views
    tiles, at = view_slots(7)
    assert (views[tiles], at) == ([0, 1, 2, 3, 4, 5], 6)
    tiles, at = view_slots(7, "before")
    assert (views[tiles], at) == ([1, 2, 3, 4, 5, 6], 0)
    assert view_slots(1, "after")[1] == view_slots(1, "before")[1] == 0  # an unsplit image's one view
    assert [0][view_slots(1, "before")[0]] == [0][view_slots(1, "after")[0]] == []
    with pytest.raises(ValueError, match="overview must be one of"):
        view_slots(7, "middle")


def test_tile_layout_resizes_aspect_preserving_onto_the_canvas():
    layout = TileLayout(height=1000, width=3000, grid=(2, 4), tile=672)
    assert layout.resized == (896, 2688)  # s = 0.896: full width, bottom padded
    assert TileLayout(1, 10_000, (1, 9), 672).resized == (1, 6048)  # never below one pixel
    assert TileLayout(50, 80, UNSPLIT, 112).resized == (112, 112)


def test_tile_layout_maps_points_to_tiles_and_overview():
    layout = TileLayout(height=1000, width=3000, grid=(2, 4), tile=672)
    assert layout.to_tile(0, 0) == (0, 0.0, 0.0)
    index, tx, ty = layout.to_tile(2999.0, 999.0)
    assert index == 7  # bottom-right tile of 2 x 4
    assert tx == pytest.approx(2999 * 0.896 - 3 * 672)
    assert ty == pytest.approx(999 * 0.896 - 672)
    index, tx, ty = layout.to_tile(1500, 500)  # centre of the image: row 0 (896 / 2 < 672), col 2
    assert (index, tx, ty) == (2, pytest.approx(1344 - 1344), pytest.approx(448))
    assert layout.to_overview(1500, 500) == (336.0, 336.0)
    assert TileLayout(100, 200, UNSPLIT, 112).to_tile(100, 50) == (0, 56.0, 56.0)
