"""Deterministic synthetic sources with real images and checkable answers, one per catalog category.

They stand in for the paper's datasets so that a tiny model trained on a laptop shows learning per
category. Sample i of a source and split is a pure function of (seed, source, split, i): any range
can be generated on its own (sharding) and reruns are byte-identical.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

from mm15.data.record import SPLITS, Sample
from mm15.data.synthetic.caption import caption
from mm15.data.synthetic.code_snippets import code
from mm15.data.synthetic.context import TIER_WEIGHTS, Context, Draft, stable_seed
from mm15.data.synthetic.drawing import to_png
from mm15.data.synthetic.general import general
from mm15.data.synthetic.math_problems import math_problem
from mm15.data.synthetic.multi_image import multi_image
from mm15.data.synthetic.ocr import docstruct, idl, pdfa, renderedtext
from mm15.data.synthetic.refer_ground import refer_ground
from mm15.data.synthetic.science import science
from mm15.data.synthetic.text_only import text_only
from mm15.data.synthetic.text_rich import text_rich

__all__ = ["SYNTHETIC_SOURCES", "generate"]

MIN_IMAGE_SIZE = 64

_GENERATORS: dict[str, tuple[str, Callable[[Context], Draft]]] = {
    "pdfa": ("ocr", pdfa),
    "idl": ("ocr", idl),
    "renderedtext": ("ocr", renderedtext),
    "docstruct": ("ocr", docstruct),
    "syn_caption": ("caption", caption),
    "syn_general": ("general", general),
    "syn_text_rich": ("text_rich", text_rich),
    "syn_refer_ground": ("refer_ground", refer_ground),
    "syn_science": ("science", science),
    "syn_math": ("math", math_problem),
    "syn_code": ("code", code),
    "syn_multi_image": ("multi_image", multi_image),
    "syn_text_only": ("text_only", text_only),
}
SYNTHETIC_SOURCES: dict[str, str] = {name: category for name, (category, _) in _GENERATORS.items()}


def generate(
    source: str, split: str, start: int, count: int, seed: int, image_size: int = 128
) -> Iterator[Sample]:
    """Samples start..start+count-1 of `source`/`split`; `image_size` is the base side of scenes."""
    if source not in _GENERATORS:
        raise KeyError(f"unknown synthetic source {source!r}; known: {', '.join(_GENERATORS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    if start < 0 or count < 0:
        raise ValueError(f"start and count must be >= 0, got start={start}, count={count}")
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"image_size must be >= {MIN_IMAGE_SIZE} for legible text, got {image_size}")
    return _samples(source, split, start, count, seed, image_size)


def _samples(source: str, split: str, start: int, count: int, seed: int, image_size: int) -> Iterator[Sample]:
    category, make = _GENERATORS[source]
    for i in range(start, start + count):
        rng = random.Random(stable_seed(seed, source, split, i))
        tier = rng.choices(range(len(TIER_WEIGHTS)), weights=TIER_WEIGHTS)[0]
        draft = make(Context(rng, tier, image_size, split))
        yield Sample(
            source=source,
            key=f"{split}/{i:07d}",
            category=category,
            split=split,
            messages=[
                {"role": "user", "content": draft.prompt},
                {"role": "assistant", "content": draft.answer},
            ],
            images=[to_png(image) for image in draft.images],
            boxes=draft.boxes,
            task=draft.task,
            tier=tier,
            meta={**draft.meta, "answer": draft.answer},
        )
