import io

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoImageProcessor

import mm15.model  # noqa: F401  (registers the Auto classes)
from mm15.model.image_processing import CLIP_MEAN, CLIP_STD, MM15ImageProcessor
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


@pytest.fixture
def processor():
    return MM15ImageProcessor(tile_size=T)


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


def test_canvas_padding_is_bottom_right_and_neutral():
    processor = MM15ImageProcessor(tile_size=T, split_mode="static", static_grid=(2, 2))
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


def test_save_and_load_round_trip(tmp_path, make_image):
    processor = MM15ImageProcessor(tile_size=48, n_min=1, n_max=6, split_mode="static", static_grid=(1, 3))
    processor.save_pretrained(tmp_path)
    loaded = AutoImageProcessor.from_pretrained(tmp_path)
    assert isinstance(loaded, MM15ImageProcessor)
    assert loaded.split_config == processor.split_config
    image = make_image(100, 40)
    assert torch.equal(loaded.split(image)[0], processor.split(image)[0])


def test_invalid_settings_fail_at_construction():
    with pytest.raises(ValueError, match="split mode"):
        MM15ImageProcessor(split_mode="random")
    with pytest.raises(ValueError, match="resample"):
        MM15ImageProcessor(resample="lanczos")


def test_a_callers_pil_image_is_not_mutated(processor):
    buffer = io.BytesIO()
    block_image(2, 3, side=200).save(buffer, "JPEG")
    image = Image.open(buffer)  # lazily decoded: draft() would shrink it in place
    processor.split(image)
    assert image.size == (600, 400)
