"""Dynamic high-resolution image splitting (docs/RECIPE.md section 2).

An image becomes `rows x cols` tiles of `tile x tile` pixels plus an overview (the whole image
squashed to `tile x tile`), placed after the tiles (the default) or before them (:func:`view_slots`);
the tiles are always row-major. The image is resized aspect-preserving to fit the canvas
`(rows * tile, cols * tile)` and padded at the bottom and right, so whole-image coordinates map to
tile pixels by one scale factor. A sample with many images is not split: each image is a single
`tile x tile` view (the grid `UNSPLIT`).

This module is pure geometry (no pixels): the image processor, the processor and the model all
take their numbers from here, so the token count of an image has exactly one definition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from typing import Literal

Grid = tuple[int, int]  # (rows, cols)
UNSPLIT: Grid = (0, 0)  # one tile x tile view of the whole image, no tiles
SplitMode = Literal["dynamic", "static", "none"]
SPLIT_MODES = ("dynamic", "static", "none")
OverviewPosition = Literal["after", "before"]
OVERVIEW_POSITIONS = ("after", "before")


@dataclass(frozen=True)
class SplitConfig:
    """How images are split: tile side, the candidate grid range and the mode.

    `dynamic` chooses a grid per image with :func:`select_grid`; `static` always uses
    `static_grid` (e.g. 2x2 + overview for CPT and ablations); `none` never splits. A sample with
    more than `max_split_images` images is never split (the paper disables splitting at 3+).
    """

    tile: int = 672
    n_min: int = 4
    n_max: int = 9
    mode: SplitMode = "dynamic"
    static_grid: Grid = (2, 2)
    max_split_images: int = 2

    def __post_init__(self) -> None:
        if self.tile < 1:
            raise ValueError(f"tile must be positive, got {self.tile}")
        if not 1 <= self.n_min <= self.n_max:
            raise ValueError(f"need 1 <= n_min <= n_max, got ({self.n_min}, {self.n_max})")
        if self.mode not in SPLIT_MODES:
            raise ValueError(f"split mode must be one of {SPLIT_MODES}, got {self.mode!r}")
        if min(self.static_grid) < 1:
            raise ValueError(f"static_grid must have positive rows and cols, got {self.static_grid}")
        object.__setattr__(self, "static_grid", tuple(self.static_grid))

    def grid_for(self, height: int, width: int, n_images: int = 1) -> Grid:
        """The grid for one image of a sample that holds `n_images` images."""
        if self.mode == "none" or n_images > self.max_split_images:
            return UNSPLIT
        if self.mode == "static":
            return self.static_grid
        return select_grid(height, width, self.tile, self.n_min, self.n_max)

    def largest_grid(self) -> Grid:
        """The grid with the most tiles an image can get (sets the most image tokens per image)."""
        if self.mode == "none":
            return UNSPLIT
        if self.mode == "static":
            return self.static_grid
        return max(candidate_grids(self.n_min, self.n_max), key=lambda g: g[0] * g[1])


@cache
def candidate_grids(n_min: int, n_max: int) -> tuple[Grid, ...]:
    """All (rows, cols) with n_min <= rows * cols <= n_max (18 grids for (4, 9))."""
    return tuple((r, c) for r in range(1, n_max + 1) for c in range(1, n_max + 1) if n_min <= r * c <= n_max)


def fit_scale(height: int, width: int, grid: Grid, tile: int) -> Fraction:
    """Aspect-preserving scale that fits the image into the grid's canvas (exact, so ties are exact)."""
    rows, cols = grid
    return min(Fraction(rows * tile, height), Fraction(cols * tile, width))


def padding_area(height: int, width: int, grid: Grid, tile: int) -> Fraction:
    """Canvas area left empty once the image is scaled by :func:`fit_scale`."""
    s = fit_scale(height, width, grid, tile)
    return grid[0] * grid[1] * tile * tile - height * width * s * s


def select_grid(height: int, width: int, tile: int = 672, n_min: int = 4, n_max: int = 9) -> Grid:
    """The grid for an image, by the rule of docs/RECIPE.md section 2.

    If some grid needs no downscaling (scale >= 1) the one with the least padding wins;
    otherwise the one with the least resolution loss (largest scale). Ties: fewer tiles first,
    then the smaller padding, then more rows.
    """
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    grids = candidate_grids(n_min, n_max)
    scale = {g: fit_scale(height, width, g, tile) for g in grids}
    pad = {g: padding_area(height, width, g, tile) for g in grids}
    unscaled = [g for g in grids if scale[g] >= 1]
    if unscaled:
        return min(unscaled, key=lambda g: (pad[g], g[0] * g[1], -g[0]))
    return min(grids, key=lambda g: (-scale[g], g[0] * g[1], pad[g], -g[0]))


def tiles_per_image(grid: Grid) -> int:
    """Views the vision tower sees for one image: the tiles plus the overview, or one view."""
    return 1 if grid == UNSPLIT else grid[0] * grid[1] + 1


def view_slots(n_views: int, overview: OverviewPosition = "after") -> tuple[slice, int]:
    """Where one image's `n_views` views go: (its tiles, row-major, as a slice; its overview's index).

    "after": the tiles, then the overview; "before": the overview, then the tiles. An unsplit image's
    one view is its overview either way. The CPU and device paths both place views by this; the
    processor's token spans follow the same order (:meth:`mm15.model.processing.MM15Processor.image_span`).
    """
    if overview not in OVERVIEW_POSITIONS:
        raise ValueError(f"overview must be one of {OVERVIEW_POSITIONS}, got {overview!r}")
    return (slice(1, n_views), 0) if overview == "before" else (slice(0, n_views - 1), n_views - 1)


def image_token_count(grid: Grid, tokens_per_tile: int) -> int:
    """The number of image tokens (placeholders = connector outputs) for one image.

    The one definition used by the processor (to expand `<image>`) and by the model (to check
    the placeholders against the features). Tile indicator tokens are text and not counted here.
    """
    return tiles_per_image(grid) * tokens_per_tile


@dataclass(frozen=True)
class TileLayout:
    """Where the pixels of one `height x width` image go once split into `grid` tiles."""

    height: int
    width: int
    grid: Grid
    tile: int

    @property
    def resized(self) -> tuple[int, int]:
        """(height, width) of the image on the canvas (top-left aligned, padded bottom-right)."""
        if self.grid == UNSPLIT:
            return self.tile, self.tile
        s = fit_scale(self.height, self.width, self.grid, self.tile)
        rows, cols = self.grid
        h = min(max(1, round(self.height * s)), rows * self.tile)
        w = min(max(1, round(self.width * s)), cols * self.tile)
        return h, w

    def to_tile(self, x: float, y: float) -> tuple[int, float, float]:
        """Map a whole-image pixel position to (tile index, x, y) in that tile (row-major tiles)."""
        if self.grid == UNSPLIT:
            tx, ty = self.to_overview(x, y)
            return 0, tx, ty
        h, w = self.resized
        cx, cy = x * w / self.width, y * h / self.height
        rows, cols = self.grid
        col = min(max(math.floor(cx / self.tile), 0), cols - 1)
        row = min(max(math.floor(cy / self.tile), 0), rows - 1)
        return row * cols + col, cx - col * self.tile, cy - row * self.tile

    def to_overview(self, x: float, y: float) -> tuple[float, float]:
        """Map a whole-image pixel position into the overview (the image's last view, or its first when
        the overview goes before the tiles)."""
        return x * self.tile / self.width, y * self.tile / self.height
