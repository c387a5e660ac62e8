"""Resize, cut and normalise decoded images on a torch device, in the image processor's layout.

The device side of resizing on the GPU: data-loader workers only decode
(:meth:`mm15.model.image_processing.MM15ImageProcessor.decode_sample` gives uint8 pixels, grids and
original sizes), and the training step turns a batch of those into normalised views here. The
views come in the CPU path's layout: per image in order, its tiles row-major then its overview (or
the overview first, `overview="before"`: :func:`~mm15.model.splitting.view_slots`), each canvas
laid out by the same :class:`~mm15.model.splitting.TileLayout` (so from the original size, even
when a JPEG was decoded at a reduced scale) and padded bottom-right with the mean colour.

Resizing is `torch.nn.functional.interpolate` with `antialias=True` (Pillow's antialiased
bicubic/bilinear filters, alias-free when downscaling), rounded to uint8 levels as the CPU path's
uint8 canvas is, then normalised in float32 and cast to `dtype`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from mm15.model.splitting import UNSPLIT, Grid, OverviewPosition, TileLayout, tiles_per_image, view_slots

RESAMPLE_MODES = ("bicubic", "bilinear")


def resize_levels(x: torch.Tensor, height: int, width: int, resample: str = "bicubic") -> torch.Tensor:
    """(1, C, H, W) float pixel levels -> (1, C, height, width), clamped and rounded to 0..255."""
    if tuple(x.shape[-2:]) == (height, width):
        return x
    y = F.interpolate(x, size=(height, width), mode=resample, align_corners=False, antialias=True)
    return y.clamp_(0, 255).round_()


def tiles_on_device(
    images: Sequence[torch.Tensor],
    grids: Sequence[Grid],
    tile_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    sizes: Sequence[tuple[int, int]] | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    resample: str = "bicubic",
    overview: OverviewPosition = "after",
) -> torch.Tensor:
    """uint8 images (3, H, W) and their grids -> normalised views (total views, 3, tile, tile).

    `sizes`: each image's original (height, width), which sets its canvas layout; defaults to
    the pixels' own size. `device`: where to work (default: the first image's device). `overview`:
    each image's overview after its tiles or before them.
    """
    if resample not in RESAMPLE_MODES:
        raise ValueError(f"resample must be one of {RESAMPLE_MODES}, got {resample!r}")
    view_slots(1, overview)  # validate before any work
    sizes = [tuple(p.shape[-2:]) for p in images] if sizes is None else list(sizes)
    if not len(images) == len(grids) == len(sizes):
        raise ValueError(f"got {len(images)} images, {len(grids)} grids and {len(sizes)} sizes")
    if device is None:
        device = images[0].device if images else torch.device("cpu")
    t = tile_size
    counts = [tiles_per_image(tuple(grid)) for grid in grids]
    out = torch.empty(sum(counts), 3, t, t, device=device, dtype=dtype)
    mean_t = torch.tensor(mean, device=device, dtype=torch.float32).view(3, 1, 1)
    std_t = torch.tensor(std, device=device, dtype=torch.float32).view(3, 1, 1)
    scale, shift = 1 / (255 * std_t), -mean_t / std_t  # the CPU path's constants
    pad = torch.round(mean_t * 255)  # the mean colour, as the CPU path pads its uint8 canvas
    start = 0
    for pixels, grid, (height, width), n in zip(images, grids, sizes, counts, strict=True):
        if pixels.dtype != torch.uint8 or pixels.dim() != 3 or pixels.shape[0] != 3:
            raise ValueError(f"expected uint8 pixels (3, H, W), got {pixels.dtype} {tuple(pixels.shape)}")
        x = pixels.to(device, non_blocking=True).unsqueeze(0).float()
        views = out[start : start + n]
        slots, at = view_slots(n, overview)
        source = x  # the overview comes from whichever of decoded and canvas image is smaller
        if tuple(grid) != UNSPLIT:
            rows, cols = grid
            h, w = TileLayout(height, width, tuple(grid), t).resized
            resized = resize_levels(x, h, w, resample)
            if h * w < x.shape[-2] * x.shape[-1]:
                source = resized
            canvas = pad.expand(3, rows * t, cols * t).clone()
            canvas[:, :h, :w] = resized[0]
            canvas.mul_(scale).add_(shift)
            tiles = canvas.view(3, rows, t, cols, t).permute(1, 3, 0, 2, 4)
            views[slots].view(rows, cols, 3, t, t).copy_(tiles)
        views[at].copy_(resize_levels(source, t, t, resample)[0].mul(scale).add_(shift))
        start += n
    return out
