"""Per-sample randomness and settings, and the draft a generator returns."""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from mm15.data.record import Box

TIER_WEIGHTS = (0.40, 0.35, 0.25)  # easy, medium, hard


def stable_seed(*parts: object) -> int:
    """A 64-bit seed from `parts`, the same in every process (Python's `hash()` is salted)."""
    text = "\x1f".join(str(part) for part in parts)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


@dataclass
class Context:
    """What a generator draws one sample from: its random stream, tier, base image side and split."""

    rng: random.Random
    tier: int
    base: int
    split: str

    def size(
        self, width: tuple[float, float] = (0.75, 1.5), height: tuple[float, float] = (0.75, 1.5)
    ) -> tuple[int, int]:
        """An image size whose sides are drawn in `width` and `height` times the base side."""
        w = round(self.base * self.rng.uniform(*width))
        h = round(self.base * self.rng.uniform(*height))
        return self._split_width(w), h

    def page_size(self) -> tuple[int, int]:
        """A portrait document page about twice the base side wide."""
        w = round(2 * self.base * self.rng.uniform(0.9, 1.05))
        return self._split_width(w), round(w * self.rng.uniform(1.25, 1.45))

    def at_least(
        self, width: float, height: float, slack: tuple[float, float] = (1.0, 1.25)
    ) -> tuple[int, int]:
        """A size that holds `width` x `height` with a random margin, for content measured first."""
        return self._split_width(math.ceil(width * self.rng.uniform(*slack))), math.ceil(
            height * self.rng.uniform(*slack)
        )

    def _split_width(self, width: int) -> int:
        # Train images have even widths and eval images odd ones: no image can be in both splits.
        return width + (width - (self.split != "train")) % 2


@dataclass
class Draft:
    """A generated sample before encoding: the user prompt (with `<image>` markers) and the answer."""

    task: str
    prompt: str
    answer: str
    images: list[Image.Image] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


def image_prompt(question: str, n_images: int = 1) -> str:
    """A user turn showing the images first, numbered when there are several."""
    if n_images == 1:
        return f"<image>\n{question}"
    shown = "\n".join(f"Image {k}: <image>" for k in range(1, n_images + 1))
    return f"{shown}\n{question}"
