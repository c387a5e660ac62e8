"""Images during generation: beam search and several return sequences repeat each sample, and its
views (and grids) must repeat with it, as a block."""

from __future__ import annotations

import torch

from mm15.model.configuration import MM15Config
from mm15.model.splitting import tiles_per_image


def repeat_images(
    config: MM15Config,
    input_ids: torch.Tensor,
    pixel_values: torch.Tensor,
    image_grids: torch.Tensor | None,
    times: int,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Repeat each sample's views (and grids) `times` times, samples in order."""
    views = ((input_ids == config.image_token_id).sum(1) // config.tokens_per_tile).tolist()
    pixel_values = torch.cat([chunk for chunk in pixel_values.split(views) for _ in range(times)])
    if image_grids is None:
        return pixel_values, None
    tiles = [tiles_per_image(tuple(g)) for g in image_grids.tolist()]
    per_sample, image = [], 0
    for n in views:
        first = image
        while n > 0:
            n -= tiles[image]
            image += 1
        per_sample.append(image_grids[first:image])
    return pixel_values, torch.cat([grids for grids in per_sample for _ in range(times)])
