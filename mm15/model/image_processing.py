"""MM15ImageProcessor: encoded images -> normalised tiles + per-image grid.

Per image: read the header, choose the grid (:mod:`mm15.model.splitting`), decode (JPEG at a
reduced DCT scale when the image is far larger than needed), resize once with Pillow for the
canvas and once for the overview, then cut and normalise with a few tensor operations over
whole canvases. It runs in data-loader workers; nothing here is per pixel in Python.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature

from mm15.model.splitting import UNSPLIT, Grid, SplitConfig, TileLayout, tiles_per_image

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
ImageLike = bytes | bytearray | memoryview | Image.Image | dict

_REDUCING_GAP = 3.0  # Pillow reduces by whole factors first when downscaling 3x+: same look, faster
_RESAMPLE = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}


def open_image(image: ImageLike) -> Image.Image:
    """A lazily decoded PIL image from encoded bytes, an HF-style `{bytes, path}` dict or a PIL image.

    A dict's `path` is not opened here: callers resolve paths inside their source folder first.
    """
    if isinstance(image, Image.Image):
        return image
    if isinstance(image, dict):
        if image.get("bytes") is None:
            raise ValueError("image dict has no 'bytes'; resolve its path before processing")
        image = image["bytes"]
    if isinstance(image, bytes | bytearray | memoryview):
        return Image.open(io.BytesIO(image))
    raise TypeError(f"unsupported image type {type(image).__name__}")


class MM15ImageProcessor(BaseImageProcessor):
    """Decode, split and normalise images for MM1.5 (HF `BaseImageProcessor`-compatible save/load).

    Returns `pixel_values` of shape (total views, 3, tile, tile): for every image in order, its
    tiles row-major then its overview; and `image_grids` (n_images, 2) with each image's
    (rows, cols), (0, 0) for an unsplit image.
    """

    model_input_names = ["pixel_values", "image_grids"]

    def __init__(
        self,
        tile_size: int = 672,
        n_min: int = 4,
        n_max: int = 9,
        split_mode: str = "dynamic",
        static_grid: Sequence[int] = (2, 2),
        max_split_images: int = 2,
        image_mean: Sequence[float] = CLIP_MEAN,
        image_std: Sequence[float] = CLIP_STD,
        resample: str = "bicubic",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if resample not in _RESAMPLE:
            raise ValueError(f"resample must be one of {sorted(_RESAMPLE)}, got {resample!r}")
        self.tile_size = tile_size
        self.n_min = n_min
        self.n_max = n_max
        self.split_mode = split_mode
        self.static_grid = list(static_grid)
        self.max_split_images = max_split_images
        self.image_mean = list(image_mean)
        self.image_std = list(image_std)
        self.resample = resample
        _ = self.split_config  # validate now, not at the first image

    @property
    def split_config(self) -> SplitConfig:
        return SplitConfig(
            tile=self.tile_size,
            n_min=self.n_min,
            n_max=self.n_max,
            mode=self.split_mode,
            static_grid=tuple(self.static_grid),
            max_split_images=self.max_split_images,
        )

    def _normaliser(self) -> tuple[torch.Tensor, torch.Tensor]:
        # (x / 255 - mean) / std == x * scale + shift, one fused pass over uint8 input
        std = torch.tensor(self.image_std, dtype=torch.float32)
        mean = torch.tensor(self.image_mean, dtype=torch.float32)
        return (1 / (255 * std)).view(3, 1, 1), (-mean / std).view(3, 1, 1)

    def _pad_colour(self) -> np.ndarray:
        # the mean colour normalises to ~0, so padding carries no signal
        return np.round(np.asarray(self.image_mean) * 255).astype(np.uint8)

    def grid_for(self, image: ImageLike, n_images: int = 1) -> Grid:
        """The grid an image gets in a sample of `n_images` images (reads only the header)."""
        width, height = open_image(image).size
        return self.split_config.grid_for(height, width, n_images)

    def split(self, image: ImageLike, n_images: int = 1) -> tuple[torch.Tensor, Grid]:
        """One image -> (normalised views (n, 3, tile, tile), grid)."""
        img = open_image(image)
        width, height = img.size
        grid = self.split_config.grid_for(height, width, n_images)
        layout = TileLayout(height, width, grid, self.tile_size)
        h, w = layout.resized
        t = self.tile_size
        if img is not image and img.format == "JPEG" and img.mode in ("RGB", "L", "CMYK"):
            # decode at a DCT scale still >= what we need (only an image we opened: draft mutates it)
            img.draft(img.mode, (max(w, t), max(h, t)))
        img = img.convert("RGB")
        resample = _RESAMPLE[self.resample]

        views = torch.empty(tiles_per_image(grid), 3, t, t, dtype=torch.float32)
        source = img  # the overview comes from whichever of original and canvas image is smaller
        if grid != UNSPLIT:
            rows, cols = grid
            resized = img.resize((w, h), resample, reducing_gap=_REDUCING_GAP)
            source = resized if h * w < height * width else img
            # planar canvas: cutting tiles then copies contiguous rows instead of transposing pixels
            canvas = np.empty((3, rows * t, cols * t), dtype=np.uint8)
            for c, (band, pad) in enumerate(zip(resized.split(), self._pad_colour(), strict=True)):
                canvas[c, :h, :w] = np.asarray(band)
                canvas[c, h:] = pad
                canvas[c, :h, w:] = pad
            tiles = torch.from_numpy(canvas).view(3, rows, t, cols, t).permute(1, 3, 0, 2, 4)
            views[:-1].view(rows, cols, 3, t, t).copy_(tiles)
        overview = source.resize((t, t), resample, reducing_gap=_REDUCING_GAP)
        views[-1].copy_(torch.from_numpy(np.array(overview)).permute(2, 0, 1))
        scale, shift = self._normaliser()
        return views.mul_(scale).add_(shift), grid

    def process_sample(self, images: Sequence[ImageLike]) -> tuple[torch.Tensor, list[Grid]]:
        """All images of one sample -> (their views concatenated, their grids)."""
        t = self.tile_size
        if not images:
            return torch.empty(0, 3, t, t), []
        parts = [self.split(image, n_images=len(images)) for image in images]
        return torch.cat([views for views, _ in parts]), [grid for _, grid in parts]

    def __call__(self, images: Any, **kwargs: Any) -> BatchFeature:
        return self.preprocess(images, **kwargs)

    def preprocess(self, images: Any, return_tensors: str | None = "pt", **kwargs: Any) -> BatchFeature:
        """Images of one sample (a flat list) or of a batch (a list of lists) -> tiles and grids.

        The split decision counts images per sample, so pass a batch as a list of lists.
        """
        if isinstance(images, ImageLike):
            images = [images]
        samples = images if images and isinstance(images[0], list | tuple) else [images]
        pixels, grids = [], []
        for sample in samples:
            views, sample_grids = self.process_sample(sample)
            pixels.append(views)
            grids.extend(sample_grids)
        return BatchFeature(
            {
                "pixel_values": torch.cat(pixels),
                "image_grids": torch.tensor(grids, dtype=torch.long).view(-1, 2),
            }
        )
