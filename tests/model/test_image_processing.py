import io
import json

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoImageProcessor

import mm15.model  # noqa: F401  (registers the Auto classes)
from mm15.model.image_processing import BACKENDS, CLIP_MEAN, CLIP_STD, MM15ImageProcessor
from mm15.model.splitting import UNSPLIT

T = 32  # small tiles keep these tests fast; the geometry is the same at 672
BLOCKS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255)]


def normalised(rgb):
    return torch.tensor([(v / 255 - m) / s for v, m, s in zip(rgb, CLIP_MEAN, CLIP_STD, strict=True)])


def block_image(rows: int, cols: int, side: int = T) -> Image.Image:
    """rows x cols solid blocks of side x side pixels, coloured from BLOCKS row-major."""
    pixels = np.zeros((rows * side, cols * side, 3), dtype=np.uint8)
    for k in range(rows * cols):
        r, c = divmod(k, cols)
        pixels[r * side : (r + 1) * side, c * side : (c + 1) * side] = BLOCKS[k]
    return Image.fromarray(pixels)


def photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """Smooth gradients, hard edges and fine stripes: content where resampling filters differ."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    pixels = np.stack([255 * x / width, 255 * y / height, 128 + 100 * np.sin(x / 7 + y / 11)], axis=-1)
    for _ in range(6):
        x0, y0 = rng.integers(0, width), rng.integers(0, height)
        pixels[y0 : y0 + height // 5, x0 : x0 + width // 4] = rng.integers(0, 256, 3)
    pixels[:, ::9] = 0  # one-pixel stripes: aliasing shows here when downscaling
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))


@pytest.fixture(params=BACKENDS)
def processor(request):
    return MM15ImageProcessor(tile_size=T, backend=request.param)


def test_tiles_are_cut_row_major_and_normalised(processor):
    views, grid = processor.split(block_image(2, 3))  # exactly 2x3 tiles: no resampling at all
    assert grid == (2, 3)
    assert views.shape == (7, 3, T, T)
    for k in range(6):
        expected = normalised(BLOCKS[k]).view(3, 1, 1).expand(3, T, T)
        assert torch.allclose(views[k], expected, atol=1e-5), f"tile {k}"


def test_overview_is_the_whole_image_after_the_tiles(processor):
    views, _ = processor.split(block_image(2, 3))
    overview = views[-1]
    q = T // 6  # centre of the top-left and bottom-right blocks in the squashed overview
    assert torch.allclose(overview[:, q, q], normalised(BLOCKS[0]), atol=1e-3)
    assert torch.allclose(overview[:, T - q, T - q], normalised(BLOCKS[5]), atol=1e-3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_canvas_padding_is_bottom_right_and_neutral(backend):
    processor = MM15ImageProcessor(tile_size=T, split_mode="static", static_grid=(2, 2), backend=backend)
    views, grid = processor.split(block_image(1, 2))  # T x 2T fits the 2T x 2T canvas unscaled
    assert grid == (2, 2)
    assert torch.allclose(views[0], normalised(BLOCKS[0]).view(3, 1, 1).expand(3, T, T), atol=1e-5)
    assert torch.allclose(views[1], normalised(BLOCKS[1]).view(3, 1, 1).expand(3, T, T), atol=1e-5)
    assert views[2].abs().max() < 0.01 and views[3].abs().max() < 0.01  # mean colour ~ 0


def test_three_images_are_not_split(make_image, processor):
    images = [make_image(200, 90), make_image(90, 200), make_image(50, 50)]
    pixels, grids = processor.process_sample(images)
    assert grids == [UNSPLIT] * 3
    assert pixels.shape == (3, 3, T, T)
    pixels, grids = processor.process_sample(images[:2])
    assert all(g != UNSPLIT for g in grids)
    assert pixels.shape[0] == sum(r * c + 1 for r, c in grids)


def test_accepts_bytes_pil_and_record_dicts(make_image, processor):
    data = make_image(64, 64, "blue")
    from_bytes, _ = processor.split(data)
    from_dict, _ = processor.split({"bytes": data, "path": "x.png"})
    from_pil, _ = processor.split(Image.new("RGB", (64, 64), "blue"))
    assert torch.equal(from_bytes, from_dict) and torch.equal(from_bytes, from_pil)
    with pytest.raises(ValueError, match="bytes"):
        processor.split({"bytes": None, "path": "elsewhere.png"})
    with pytest.raises(TypeError):
        processor.split(12)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK"])
def test_any_colour_mode_becomes_three_channels(processor, mode):
    image = Image.new("RGB", (48, 40), (200, 30, 30)).convert(mode)
    views, _ = processor.split(image)
    assert views.shape[1] == 3 and torch.isfinite(views).all()


def test_large_jpeg_decoded_at_reduced_scale_matches_full_decode(processor):
    image = block_image(2, 3, side=500)  # 1000 x 1500, far above the 2T x 3T canvas
    jpeg, png = io.BytesIO(), io.BytesIO()
    image.save(jpeg, "JPEG", quality=95)
    image.save(png, "PNG")
    from_jpeg, grid_jpeg = processor.split(jpeg.getvalue())
    from_png, grid_png = processor.split(png.getvalue())
    assert grid_jpeg == grid_png == (2, 3)
    assert (from_jpeg - from_png).abs().mean() < 0.05


def test_preprocess_batches_per_sample(make_image, processor):
    batch = processor([[make_image(64, 32)], [make_image(30, 30)] * 3], return_tensors="pt")
    grids = batch["image_grids"].tolist()
    assert grids[1:] == [[0, 0]] * 3  # the 3-image sample is not split
    assert batch["pixel_values"].shape[0] == (grids[0][0] * grids[0][1] + 1) + 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_save_and_load_round_trip(tmp_path, make_image, backend):
    processor = MM15ImageProcessor(
        tile_size=48,
        n_min=1,
        n_max=6,
        split_mode="static",
        static_grid=(1, 3),
        resample="bilinear",
        backend=backend,
        overview="before",
    )
    processor.save_pretrained(tmp_path)
    loaded = AutoImageProcessor.from_pretrained(tmp_path)
    assert isinstance(loaded, MM15ImageProcessor)
    assert loaded.split_config == processor.split_config
    assert (loaded.backend, loaded.resample, loaded.overview) == (backend, "bilinear", "before")
    image = make_image(100, 40)
    assert torch.equal(loaded.split(image)[0], processor.split(image)[0])


def test_invalid_settings_fail_at_construction():
    with pytest.raises(ValueError, match="split mode"):
        MM15ImageProcessor(split_mode="random")
    with pytest.raises(ValueError, match="resample"):
        MM15ImageProcessor(resample="lanczos")
    with pytest.raises(ValueError, match="backend"):
        MM15ImageProcessor(backend="magick")
    with pytest.raises(ValueError, match="overview must be one of"):
        MM15ImageProcessor(overview="middle")


def test_a_saved_processor_without_overview_loads_as_after(tmp_path):
    MM15ImageProcessor(tile_size=T).save_pretrained(tmp_path)
    path = tmp_path / "preprocessor_config.json"
    config = json.loads(path.read_text())
    del config["overview"]  # saved before the setting existed
    path.write_text(json.dumps(config))
    assert AutoImageProcessor.from_pretrained(tmp_path).overview == "after"


def test_overview_before_puts_each_split_images_overview_first(processor):
    """The same views, each split image's overview moved in front of its tiles; unsplit images unchanged."""
    before = MM15ImageProcessor(tile_size=T, backend=processor.backend, overview="before")
    for images in ([photo(150, 90, seed=1), block_image(2, 3)], [photo(60, 40, seed=k) for k in range(3)]):
        (after_views, grids), (before_views, before_grids) = (
            p.process_sample(images) for p in (processor, before)
        )
        assert before_grids == grids
        start, expected = 0, []
        for grid in grids:
            n = 1 if grid == UNSPLIT else grid[0] * grid[1] + 1
            expected.append(after_views[start : start + n].roll(1, dims=0))  # the last view first
            start += n
        assert torch.equal(before_views, torch.cat(expected))
        if UNSPLIT in grids:
            assert torch.equal(before_views, after_views)  # one view per image: nothing moves
    views, _ = before.split(block_image(2, 3))
    assert torch.allclose(views[1], normalised(BLOCKS[0]).view(3, 1, 1).expand(3, T, T), atol=1e-5)


def test_a_callers_pil_image_is_not_mutated(processor):
    buffer = io.BytesIO()
    block_image(2, 3, side=200).save(buffer, "JPEG")
    image = Image.open(buffer)  # lazily decoded: draft() would shrink it in place
    processor.split(image)
    assert image.size == (600, 400)


@pytest.mark.parametrize("resample", ["bicubic", "bilinear"])
@pytest.mark.parametrize(
    "size",
    [(40, 30), (130, 70), (300, 200), (700, 90), (60, 260)],  # enlarged, shrunk, one axis each way
)
def test_fast_backend_is_close_to_pillow(size, resample):
    """Different kernels (OpenCV enlarges with its own cubic), the same picture: tiles agree closely."""
    fast = MM15ImageProcessor(tile_size=T, resample=resample)
    pillow = MM15ImageProcessor(tile_size=T, resample=resample, backend="pillow")
    image = photo(*size)
    (a, grid_a), (b, grid_b) = fast.split(image), pillow.split(image)
    assert grid_a == grid_b and a.shape == b.shape
    assert (a - b).abs().mean() < 0.03  # normalised units: about 2 levels of 255 on average


def test_bilinear_and_bicubic_differ_slightly(processor):
    bilinear = MM15ImageProcessor(tile_size=T, resample="bilinear", backend=processor.backend)
    image = photo(150, 90)
    a, b = processor.split(image)[0], bilinear.split(image)[0]
    assert 0 < (a - b).abs().mean() < 0.05


def test_process_sample_fills_each_images_slice(processor):
    images = [photo(150, 90, seed=1), photo(40, 100, seed=2)]
    views, grids = processor.process_sample(images)
    parts = [processor.split(image, n_images=2) for image in images]
    assert grids == [grid for _, grid in parts]
    assert torch.equal(views, torch.cat([v for v, _ in parts]))


def test_resizing_threads_follow_torch():
    import cv2

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # as in a data-loader worker
        MM15ImageProcessor(tile_size=T).split(photo(100, 60))
        assert cv2.getNumThreads() == 1
    finally:
        torch.set_num_threads(threads)
