"""MM15ImageProcessor: encoded images -> normalised tiles + per-image grid.

Per image: read the header, choose the grid (:mod:`mm15.model.splitting`), decode (JPEG at a
reduced DCT scale when the image is far larger than needed), resize once for the canvas and once
for the overview (from the canvas when that is smaller), then cut and normalise in one pass per
tile plane, each view straight into its slot (`overview`: after the tiles, or before them). It
runs in data-loader workers; nothing here is per pixel in Python.

Backends: `fast` (default) shrinks with torch's uint8 antialiased kernel (Pillow's bicubic or
bilinear filter, vectorised) and enlarges with OpenCV's bicubic/bilinear, the fastest at each;
`pillow` is the previous path (Pillow's resize), kept to compare and to reproduce old pixels. Both
use `torch.get_num_threads()` threads: 1 in a data-loader worker, so workers never oversubscribe.
To resize on the GPU instead, workers only decode (:meth:`MM15ImageProcessor.decode_sample`) and
the training step calls :meth:`MM15ImageProcessor.views_on_device` (:mod:`mm15.model.device_tiles`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature

from mm15.model.device_tiles import tiles_on_device
from mm15.model.splitting import UNSPLIT, Grid, SplitConfig, TileLayout, tiles_per_image, view_slots

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
ImageLike = bytes | bytearray | memoryview | Image.Image | dict
BACKENDS = ("fast", "pillow")

_REDUCING_GAP = 3.0  # Pillow reduces by whole factors first when downscaling 3x+: same look, faster
_RESAMPLE = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}
_CV_UPSCALE = {"bicubic": cv2.INTER_CUBIC, "bilinear": cv2.INTER_LINEAR}


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


def resize_planes(x: torch.Tensor, height: int, width: int, resample: str = "bicubic") -> np.ndarray:
    """(3, H, W) uint8 pixels, any strides -> planar (3, height, width) uint8 pixels.

    Shrinking axes go through torch's uint8 antialiased kernel (Pillow's filters: alias-free),
    then growing axes through OpenCV, plane by plane, so the result is planar for cutting tiles.
    """
    if cv2.getNumThreads() != torch.get_num_threads():
        cv2.setNumThreads(torch.get_num_threads())  # 1 in data-loader workers
    _, h0, w0 = x.shape
    down_h, down_w = min(height, h0), min(width, w0)
    if (down_h, down_w) != (h0, w0):
        x = F.interpolate(x[None], size=(down_h, down_w), mode=resample, antialias=True)[0]
    planes = x.contiguous().numpy()
    if (down_h, down_w) == (height, width):
        return planes
    out = np.empty((3, height, width), dtype=np.uint8)
    for src, dst in zip(planes, out, strict=True):
        if cv2.resize(src, (width, height), dst=dst, interpolation=_CV_UPSCALE[resample]) is not dst:
            raise RuntimeError("OpenCV did not resize in place")  # shapes match: never silently
    return out


def _chw(img: Image.Image) -> torch.Tensor:
    """(3, H, W) uint8 view of a decoded RGB image's (H, W, 3) pixels (a writable copy)."""
    return torch.from_numpy(np.array(img)).permute(2, 0, 1)


def _affine(src: np.ndarray, scale: float, shift: float, dst: np.ndarray) -> None:
    """dst = src * scale + shift: uint8 plane to float32, written in place, one pass."""
    if cv2.addWeighted(src, scale, src, 0.0, shift, dst=dst, dtype=cv2.CV_32F) is not dst:
        raise RuntimeError("OpenCV did not normalise in place")  # shapes match: never silently


class MM15ImageProcessor(BaseImageProcessor):
    """Decode, split and normalise images for MM1.5 (HF `BaseImageProcessor`-compatible save/load).

    Returns `pixel_values` of shape (total views, 3, tile, tile): for every image in order, its
    tiles row-major then its overview (`overview="before"`: the overview, then the tiles); and
    `image_grids` (n_images, 2) with each image's (rows, cols), (0, 0) for an unsplit image.
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
        backend: str = "fast",
        overview: str = "after",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if resample not in _RESAMPLE:
            raise ValueError(f"resample must be one of {sorted(_RESAMPLE)}, got {resample!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.tile_size = tile_size
        self.n_min = n_min
        self.n_max = n_max
        self.split_mode = split_mode
        self.static_grid = list(static_grid)
        self.max_split_images = max_split_images
        self.image_mean = list(image_mean)
        self.image_std = list(image_std)
        self.resample = resample
        self.backend = backend
        self.overview = overview
        _ = self.split_config, view_slots(1, overview)  # validate now, not at the first image

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

    def _layout(self, image: ImageLike, n_images: int) -> tuple[Image.Image, TileLayout]:
        """The lazily decoded image and its layout (reads only the header)."""
        img = open_image(image)
        width, height = img.size
        grid = self.split_config.grid_for(height, width, n_images)
        return img, TileLayout(height, width, grid, self.tile_size)

    def _rgb(self, image: ImageLike, img: Image.Image, layout: TileLayout) -> Image.Image:
        """Decode to RGB, a JPEG at a reduced DCT scale still >= what the canvas and overview need."""
        (h, w), t = layout.resized, self.tile_size
        if img is not image and img.format == "JPEG" and img.mode in ("RGB", "L", "CMYK"):
            img.draft(img.mode, (max(w, t), max(h, t)))  # only an image we opened: draft mutates it
        return img.convert("RGB")

    def split(self, image: ImageLike, n_images: int = 1) -> tuple[torch.Tensor, Grid]:
        """One image -> (normalised views (n, 3, tile, tile), grid)."""
        img, layout = self._layout(image, n_images)
        t = self.tile_size
        views = torch.empty(tiles_per_image(layout.grid), 3, t, t, dtype=torch.float32)
        self._fill(self._rgb(image, img, layout), layout, views)
        return views, layout.grid

    def _fill(self, img: Image.Image, layout: TileLayout, views: torch.Tensor) -> None:
        if self.backend == "pillow":
            self._fill_pillow(img, layout, views)
            return
        slots, at = view_slots(len(views), self.overview)
        pixels = _chw(img)
        t, grid = self.tile_size, layout.grid
        scale, shift = (v.flatten().tolist() for v in self._normaliser())
        tiles, out = views[slots], views[slots].numpy()
        source = pixels  # the overview comes from whichever of decoded and canvas image is smaller
        if grid != UNSPLIT:
            h, w = layout.resized
            planes = resize_planes(pixels, h, w, self.resample)
            if h * w < pixels.shape[1] * pixels.shape[2]:
                source = torch.from_numpy(planes)
            pad = torch.tensor([p * a + b for p, a, b in zip(self._pad_colour(), scale, shift, strict=True)])
            rows, cols = grid
            for k in range(rows * cols):
                y, x = divmod(k, cols)
                y, x = y * t, x * t
                bh, bw = max(0, min(t, h - y)), max(0, min(t, w - x))  # padded bottom-right
                for ch in range(3 if bh and bw else 0):
                    _affine(planes[ch, y : y + bh, x : x + bw], scale[ch], shift[ch], out[k, ch, :bh, :bw])
                tiles[k, :, bh:] = pad.view(3, 1, 1)
                tiles[k, :, :bh, bw:] = pad.view(3, 1, 1)
        overview, out = resize_planes(source, t, t, self.resample), views[at].numpy()
        for ch in range(3):
            _affine(overview[ch], scale[ch], shift[ch], out[ch])

    def _fill_pillow(self, img: Image.Image, layout: TileLayout, views: torch.Tensor) -> None:
        """The previous path: Pillow's antialiased filters, a uint8 canvas, then normalise."""
        (h, w), t, grid = layout.resized, self.tile_size, layout.grid
        slots, at = view_slots(len(views), self.overview)
        resample = _RESAMPLE[self.resample]
        source = img  # the overview comes from whichever of original and canvas image is smaller
        if grid != UNSPLIT:
            rows, cols = grid
            resized = img.resize((w, h), resample, reducing_gap=_REDUCING_GAP)
            source = resized if h * w < layout.height * layout.width else img
            # planar canvas: cutting tiles then copies contiguous rows instead of transposing pixels
            canvas = np.empty((3, rows * t, cols * t), dtype=np.uint8)
            for c, (band, pad) in enumerate(zip(resized.split(), self._pad_colour(), strict=True)):
                canvas[c, :h, :w] = np.asarray(band)
                canvas[c, h:] = pad
                canvas[c, :h, w:] = pad
            cut = torch.from_numpy(canvas).view(3, rows, t, cols, t).permute(1, 3, 0, 2, 4)
            views[slots].view(rows, cols, 3, t, t).copy_(cut)
        overview = source.resize((t, t), resample, reducing_gap=_REDUCING_GAP)
        views[at].copy_(torch.from_numpy(np.array(overview)).permute(2, 0, 1))
        scale, shift = self._normaliser()
        views.mul_(scale).add_(shift)

    def process_sample(self, images: Sequence[ImageLike]) -> tuple[torch.Tensor, list[Grid]]:
        """All images of one sample -> (their views concatenated, their grids).

        The layouts come from the headers, so each image fills its slice of one output (no copy)."""
        opened = [self._layout(image, len(images)) for image in images]
        counts = [tiles_per_image(layout.grid) for _, layout in opened]
        t = self.tile_size
        views = torch.empty(sum(counts), 3, t, t, dtype=torch.float32)
        start = 0
        for image, (img, layout), n in zip(images, opened, counts, strict=True):
            self._fill(self._rgb(image, img, layout), layout, views[start : start + n])
            start += n
        return views, [layout.grid for _, layout in opened]

    def decode_sample(
        self, images: Sequence[ImageLike]
    ) -> tuple[list[torch.Tensor], list[Grid], list[tuple[int, int]]]:
        """All images of one sample, only decoded (the worker side of resizing on the device): uint8
        pixels (3, H, W) (a JPEG maybe at a reduced scale that still suffices), the grids
        `process_sample` gives, and the original (height, width) that lays out each canvas."""
        pixels, grids, sizes = [], [], []
        for image in images:
            img, layout = self._layout(image, len(images))
            pixels.append(_chw(self._rgb(image, img, layout)))
            grids.append(layout.grid)
            sizes.append((layout.height, layout.width))
        return pixels, grids, sizes

    def views_on_device(
        self,
        pixels: Sequence[torch.Tensor],
        grids: Sequence[Grid],
        sizes: Sequence[tuple[int, int]] | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Decoded images (from :meth:`decode_sample`) -> normalised views on `device`, in
        `process_sample`'s layout (see :func:`mm15.model.device_tiles.tiles_on_device`)."""
        mean, std, t = self.image_mean, self.image_std, self.tile_size
        options = {"sizes": sizes, "device": device, "dtype": dtype, "resample": self.resample}
        return tiles_on_device(pixels, grids, t, mean, std, overview=self.overview, **options)

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
                "pixel_values": torch.cat(pixels) if len(pixels) > 1 else pixels[0],
                "image_grids": torch.tensor(grids, dtype=torch.long).view(-1, 2),
            }
        )
