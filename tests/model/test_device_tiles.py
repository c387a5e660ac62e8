import io

import numpy as np
import pytest
import torch
from PIL import Image

from mm15.model.device_tiles import tiles_on_device
from mm15.model.image_processing import CLIP_MEAN, CLIP_STD, MM15ImageProcessor
from mm15.model.splitting import UNSPLIT, tiles_per_image

T = 32
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """Gradients, blocks and one-pixel stripes: content where resampling filters differ."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    pixels = np.stack([255 * x / width, 255 * y / height, 128 + 100 * np.sin(x / 7 + y / 11)], axis=-1)
    for _ in range(6):
        x0, y0 = rng.integers(0, width), rng.integers(0, height)
        pixels[y0 : y0 + height // 5, x0 : x0 + width // 4] = rng.integers(0, 256, 3)
    pixels[:, ::9] = 0
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


SAMPLES = {  # enlarged, shrunk, shrunk one way and enlarged the other, and an unsplit sample
    "one enlarged": [photo(40, 30)],
    "two shrunk": [photo(300, 200, seed=1), photo(130, 70, seed=2)],
    "one wide strip": [photo(700, 90, seed=3)],
    "three unsplit": [photo(60, 260, seed=4), photo(20, 20, seed=5), photo(90, 40, seed=6)],
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("overview", ["after", "before"])
@pytest.mark.parametrize("resample", ["bicubic", "bilinear"])
@pytest.mark.parametrize("sample", SAMPLES)
def test_device_views_match_the_cpu_path(sample, resample, overview, device):
    processor = MM15ImageProcessor(tile_size=T, resample=resample, overview=overview)
    images = SAMPLES[sample]
    expected, grids = processor.process_sample(images)
    pixels, decoded_grids, sizes = processor.decode_sample(images)
    assert decoded_grids == grids  # the same split decision
    assert all(
        p.dtype == torch.uint8 and p.shape == (3, im.height, im.width)
        for p, im in zip(pixels, images, strict=True)
    )
    views = processor.views_on_device(pixels, grids, sizes, device=device)
    assert views.device.type == device and views.shape == expected.shape
    diff = (views.cpu() - expected).abs()
    assert diff.mean() < 0.03  # different kernels when enlarging, Pillow's filter both ways shrinking
    # same order: each view is far closer to its own CPU counterpart than to any other view
    pairwise = (views.cpu().flatten(1)[:, None] - expected.flatten(1)[None]).abs().mean(-1)
    assert torch.equal(pairwise.argmin(1), torch.arange(len(views)))


def test_unresampled_tiles_and_padding_are_exact():
    """A 2T x 3T image fills a 2x3 canvas as is, and a T x 2T one a static 2x2 canvas's top row."""
    for grid, size in [((2, 3), (3 * T, 2 * T)), ((2, 2), (2 * T, T))]:
        processor = MM15ImageProcessor(tile_size=T, split_mode="static", static_grid=grid)
        image = photo(*size)
        expected, _ = processor.split(image)
        pixels, grids, sizes = processor.decode_sample([image])
        views = processor.views_on_device(pixels, grids, sizes)
        assert torch.allclose(views[:-1], expected[:-1], atol=1e-5)  # tiles, padding included


def test_reduced_jpeg_decode_keeps_the_original_layout():
    processor = MM15ImageProcessor(tile_size=T)
    data = jpeg(photo(640, 400))  # far above its 2x3 canvas: decoded at a reduced scale
    pixels, grids, sizes = processor.decode_sample([data])
    assert sizes == [(400, 640)] and pixels[0].shape[1:] < (400, 640)
    assert pixels[0].shape[1] >= 2 * T and pixels[0].shape[2] >= 3 * T
    expected, expected_grids = processor.process_sample([data])
    views = processor.views_on_device(pixels, grids, sizes)
    assert grids == expected_grids and views.shape == expected.shape
    assert (views - expected).abs().mean() < 0.03


def test_dtype_device_and_defaults():
    pixels = torch.from_numpy(np.array(photo(100, 60))).permute(2, 0, 1)  # a (3, H, W) view of HWC
    grid = MM15ImageProcessor(tile_size=T).split_config.grid_for(60, 100)
    views = tiles_on_device([pixels, pixels], [grid, UNSPLIT], T, CLIP_MEAN, CLIP_STD, dtype=torch.bfloat16)
    assert views.dtype == torch.bfloat16 and views.device == pixels.device
    assert views.shape == (tiles_per_image(grid) + 1, 3, T, T)
    assert tiles_on_device([], [], T, CLIP_MEAN, CLIP_STD).shape == (0, 3, T, T)


def test_bad_inputs_fail_clearly():
    pixels = torch.zeros(3, 40, 40, dtype=torch.uint8)
    with pytest.raises(ValueError, match="grids"):
        tiles_on_device([pixels], [], T, CLIP_MEAN, CLIP_STD)
    with pytest.raises(ValueError, match="uint8"):
        tiles_on_device([pixels.float()], [UNSPLIT], T, CLIP_MEAN, CLIP_STD)
    with pytest.raises(ValueError, match="resample"):
        tiles_on_device([pixels], [UNSPLIT], T, CLIP_MEAN, CLIP_STD, resample="nearest")
    with pytest.raises(ValueError, match="overview"):
        tiles_on_device([pixels], [UNSPLIT], T, CLIP_MEAN, CLIP_STD, overview="middle")


@pytest.mark.parametrize("device", DEVICES)
def test_overview_before_moves_each_split_images_overview_first(device):
    images = SAMPLES["two shrunk"] + SAMPLES["one enlarged"]  # three images: unsplit, one view each
    for sample in (SAMPLES["two shrunk"], images):
        pixels, grids, sizes = MM15ImageProcessor(tile_size=T).decode_sample(sample)
        after, before = (
            tiles_on_device(pixels, grids, T, CLIP_MEAN, CLIP_STD, sizes=sizes, device=device, overview=o)
            for o in ("after", "before")
        )
        counts = [tiles_per_image(g) for g in grids]
        expected = torch.cat([part.roll(1, dims=0) for part in after.split(counts)])
        assert torch.equal(before, expected)
