"""Fixtures for the model tests: encoded images and the tiny preset's processor and model."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
import torch
from PIL import Image

from mm15.model.presets import build_model, build_processor


def encode(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def make_image() -> Callable[..., bytes]:
    """`make_image(width, height, colour="red", fmt="PNG")` -> encoded image bytes."""

    def make(width: int, height: int, colour: str | tuple[int, int, int] = "red", fmt: str = "PNG") -> bytes:
        return encode(Image.new("RGB", (width, height), colour), fmt)

    return make


@pytest.fixture(scope="session")
def tiny_processor():
    return build_processor("tiny")


@pytest.fixture(scope="session")
def tiny_model(tiny_processor):
    """A fixed tiny model in eval mode; tests that train build their own."""
    torch.manual_seed(0)
    return build_model("tiny", tiny_processor).eval()
