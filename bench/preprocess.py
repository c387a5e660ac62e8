"""Benchmark: images/s of decode + split + normalise, MM15ImageProcessor's paths vs transformers' LLaVA-NeXT.

    python bench/preprocess.py                  # 24 mixed-size images, 3 rounds, 1 thread
    python bench/preprocess.py --images 48 --rounds 5 --threads 2 --device cpu

A fixed set of synthetic images (drawn with Pillow from a fixed seed: shapes, text, gradients;
sizes from 320x240 to 3000x2000 and strips up to 6:1, half PNG, half JPEG) is encoded once,
untimed. Each pipeline then decodes every image from its bytes, one image per call as in a
data-loader worker, with the same candidate grids:

- `decode only`: `MM15ImageProcessor.decode_sample` (what a worker does when resizing happens on
  the device): the ceiling for any CPU path;
- `mm15 pillow`: the previous path (`backend="pillow"`: Pillow's resize, then normalise);
- `mm15 fast`: the default path (`backend="fast"`: torch's uint8 antialiased kernel to shrink,
  OpenCV to enlarge, OpenCV to normalise each tile plane);
- `device cuda` (or `device cpu`): decode, then `views_on_device` on `--device` (default: CUDA
  when available, else the CPU; CUDA is synchronised after every image, so its time counts);
- `llava-next`: `LlavaNextImageProcessorPil` (the PIL/numpy processor, built from kwargs) with
  the 18 grids x 672 as `image_grid_pinpoints`.

MM15 runs at tile 672 with (4, 9) grids, then with the tiny preset's settings (112 px tiles,
(1, 4) grids). The pipelines run alternately in each round, and the best round of each is
reported. Targets: `mm15 fast` >= 1.6x `mm15 pillow`, and faster than LLaVA-NeXT.
"""

from __future__ import annotations

import argparse
import io
import random
import time
from collections.abc import Callable

import torch
from PIL import Image, ImageDraw
from transformers.models.llava_next.image_processing_pil_llava_next import LlavaNextImageProcessorPil

from mm15.model.image_processing import MM15ImageProcessor
from mm15.model.splitting import candidate_grids, tiles_per_image

SIZES = [  # (width, height): photos, screenshots, documents, strips
    (320, 240),
    (640, 480),
    (800, 800),
    (1024, 768),
    (1280, 720),
    (1700, 2200),
    (2000, 1500),
    (3000, 2000),
    (2400, 400),
    (400, 2400),
    (1920, 1080),
    (1100, 1400),
]
SETTINGS = {"672 px, (4, 9)": (672, 4, 9), "tiny: 112 px, (1, 4)": (112, 1, 4)}


def synthetic_image(rng: random.Random, width: int, height: int) -> Image.Image:
    """A deterministic picture with flat regions, edges, text and a gradient, like real content."""
    base = [rng.randrange(256) for _ in range(3)]
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    image = Image.blend(image, Image.new("RGB", (width, height), tuple(base)), 0.6)
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = rng.randrange(width), rng.randrange(height)
        w, h = rng.randint(width // 20 + 1, width // 3 + 2), rng.randint(height // 20 + 1, height // 3 + 2)
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x, y, x + w, y + h), fill=colour)
    for line in range(0, height, max(height // 12, 12)):
        draw.text((10, line), f"line {line}: the quick brown fox {rng.randrange(10**6)}", fill=(0, 0, 0))
    return image


def make_images(n: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    encoded = []
    for k in range(n):
        width, height = SIZES[k % len(SIZES)]
        buffer = io.BytesIO()
        if k % 2:
            synthetic_image(rng, width, height).save(buffer, "JPEG", quality=90)
        else:
            synthetic_image(rng, width, height).save(buffer, "PNG")
        encoded.append(buffer.getvalue())
    return encoded


def mm15_pipeline(tile: int, n_min: int, n_max: int, backend: str) -> Callable[[bytes], int]:
    processor = MM15ImageProcessor(tile_size=tile, n_min=n_min, n_max=n_max, backend=backend)

    def run(data: bytes) -> int:
        return processor.split(data)[0].shape[0]

    return run


def decode_pipeline(tile: int, n_min: int, n_max: int) -> Callable[[bytes], int]:
    processor = MM15ImageProcessor(tile_size=tile, n_min=n_min, n_max=n_max)

    def run(data: bytes) -> int:
        _, grids, _ = processor.decode_sample([data])
        return tiles_per_image(grids[0])

    return run


def device_pipeline(tile: int, n_min: int, n_max: int, device: torch.device) -> Callable[[bytes], int]:
    processor = MM15ImageProcessor(tile_size=tile, n_min=n_min, n_max=n_max)

    def run(data: bytes) -> int:
        views = processor.views_on_device(*processor.decode_sample([data]), device=device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return views.shape[0]

    return run


def llava_next_pipeline(tile: int, n_min: int, n_max: int) -> Callable[[bytes], int]:
    processor = LlavaNextImageProcessorPil(
        image_grid_pinpoints=[[rows * tile, cols * tile] for rows, cols in candidate_grids(n_min, n_max)],
        size={"shortest_edge": tile},
        crop_size={"height": tile, "width": tile},
    )

    def run(data: bytes) -> int:
        image = Image.open(io.BytesIO(data)).convert("RGB")
        return processor(image, return_tensors="pt")["pixel_values"].shape[1]

    return run


def timed(run: Callable[[bytes], int], images: list[bytes]) -> tuple[float, int]:
    start = time.perf_counter()
    views = sum(run(data) for data in images)
    return time.perf_counter() - start, views


def compare(
    name: str, settings: tuple[int, int, int], images: list[bytes], rounds: int, device: torch.device
) -> list[tuple]:
    pipelines = {
        "decode only": decode_pipeline(*settings),
        "mm15 pillow": mm15_pipeline(*settings, backend="pillow"),
        "mm15 fast": mm15_pipeline(*settings, backend="fast"),
        f"device {device.type}": device_pipeline(*settings, device=device),
        "llava-next": llava_next_pipeline(*settings),
    }
    for run in pipelines.values():
        run(images[0])  # warm-up
    best = {key: (float("inf"), 0) for key in pipelines}
    for _ in range(rounds):
        for key, run in pipelines.items():
            seconds, views = timed(run, images)
            best[key] = min(best[key], (seconds, views))
    rows = []
    for key, (seconds, views) in best.items():
        rows.append(
            (
                name,
                key,
                len(images) / seconds,
                views / seconds,
                1000 * seconds / len(images),
                views / len(images),
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a data-loader worker uses 1)")
    parser.add_argument(
        "--device", default=None, help="for `device ...` (default: cuda if available, else cpu)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    images = make_images(args.images)
    megapixels = sum(Image.open(io.BytesIO(b)).width * Image.open(io.BytesIO(b)).height for b in images) / 1e6
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "the CPU"
    print(
        f"{len(images)} images ({megapixels:.1f} MP in all, half PNG / half JPEG), {args.threads} thread(s); "
        f"`device {device.type}` resizes and normalises on {where}\n"
    )
    print(
        f"{'setting':<22} {'pipeline':<12} {'images/s':>9} {'views/s':>8} {'ms/image':>9} {'views/image':>12}"
    )
    for name, settings in SETTINGS.items():
        rows = compare(name, settings, images, args.rounds, device)
        for setting, key, rate, view_rate, ms, views in rows:
            print(f"{setting:<22} {key:<12} {rate:>9.1f} {view_rate:>8.1f} {ms:>9.1f} {views:>12.1f}")
        rate = {key: row_rate for _, key, row_rate, *_ in rows}
        for label, num, den, target in [
            ("new / old", "mm15 fast", "mm15 pillow", "target >= 1.6 at 672 px"),
            ("vs llava", "mm15 fast", "llava-next", "target > 1"),
            ("of decode", "mm15 fast", "decode only", "ceiling 1"),
            ("dev / decode", f"device {device.type}", "decode only", "ceiling 1"),
        ]:
            print(f"{name:<22} {label:<12} {rate[num] / rate[den]:>8.2f}x  ({num} / {den}; {target})")
        print()


if __name__ == "__main__":
    main()
