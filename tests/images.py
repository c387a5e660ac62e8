"""Small real images for tests, made with Pillow."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw


def picture(seed: int, size: tuple[int, int] = (96, 80)) -> Image.Image:
    """A distinct picture per seed: coloured bars and a circle at seed-dependent places."""
    img = Image.new("RGB", size, (seed * 37 % 256, seed * 91 % 256, seed * 53 % 256))
    draw = ImageDraw.Draw(img)
    w, h = size
    for k in range(4):
        x = (seed * 13 + k * 29) % w
        draw.rectangle([x, 0, x + w // 8, h], fill=((seed + k) * 71 % 256, 255 - k * 40, k * 60))
    cx, cy = (seed * 17) % w, (seed * 23) % h
    draw.ellipse([cx - h // 4, cy - h // 4, cx + h // 4, cy + h // 4], fill=(255, 255 - seed % 256, 0))
    return img


def encode(img: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def png(seed: int, size: tuple[int, int] = (96, 80)) -> bytes:
    return encode(picture(seed, size))
