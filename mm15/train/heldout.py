"""Held-out loss per category: the mean per-sample loss on each category's eval split.

The eval samples are the first N of each category by stored hash (a fixed, deterministic draw),
read from the same catalog snapshot the training manifest came from.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from mm15.catalog import open_catalog
from mm15.model.processing import MM15Processor
from mm15.model.splitting import tiles_per_image
from mm15.train.data import SampleReader
from mm15.train.packing import collate_rows, loss_units, pack_row, plan_packs


def eval_sample_ids(catalog_dir: Path | str, snapshot: int, per_category: int) -> dict[str, list[str]]:
    """Category -> the ids of its first `per_category` eval samples (by stored hash)."""
    with open_catalog(Path(catalog_dir), snapshot=snapshot) as catalog:
        rows = catalog.con.execute(
            "SELECT category, sample_id FROM samples WHERE split = 'eval' "
            "QUALIFY row_number() OVER (PARTITION BY category ORDER BY hash64, sample_id) <= ? "
            "ORDER BY category, hash64, sample_id",
            [per_category],
        ).fetchall()
    out: dict[str, list[str]] = {}
    for category, sid in rows:
        out.setdefault(category, []).append(sid)
    return out


@torch.no_grad()
def heldout_losses(
    model: nn.Module,
    processor: MM15Processor,
    catalog_dir: Path | str,
    snapshot: int,
    per_category: int,
    seq_len: int,
    micro_batch: int = 4,
) -> dict[str, float]:
    """Category -> mean held-out loss per sample, with the model in eval mode (restored after)."""
    ids = eval_sample_ids(catalog_dir, snapshot, per_category)
    reader = SampleReader(catalog_dir, snapshot)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    losses = {}
    try:
        for category, sample_ids in ids.items():
            found = reader.samples(sample_ids, "bytes")
            encoded = [_encode(processor, *found[s], seq_len) for s in sample_ids]
            encoded = [e for e in encoded if e is not None]  # longer than a row: not scored
            views = [sum(tiles_per_image(tuple(g)) for g in e["image_grids"]) for e in encoded]
            plan = plan_packs([len(e["input_ids"]) for e in encoded], views, seq_len, 10**6)
            total = units = 0.0
            for start in range(0, len(plan.rows), micro_batch):
                rows = [
                    pack_row([encoded[i] for i in row], seq_len, processor.tokenizer.pad_token_id)
                    for row in plan.rows[start : start + micro_batch]
                ]
                batch = collate_rows(rows, processor.image_processor.tile_size)
                n = loss_units(batch, model.config.loss_reduction)
                if n:
                    total += float(_loss(model, batch, device)) * n
                    units += n
            losses[category] = total / units if units else float("nan")
    finally:
        reader.close()
        model.train(was_training)
    return losses


def _encode(processor: MM15Processor, messages: list, images: list, seq_len: int) -> dict | None:
    try:
        return processor.encode_chat(messages, images, max_length=seq_len)
    except ValueError:
        return None


def _loss(model: nn.Module, batch: dict, device: torch.device) -> torch.Tensor:
    inputs = {
        k: batch[k].to(device)
        for k in ("input_ids", "labels", "position_ids", "sample_index", "pixel_values", "image_grids")
    }
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        return model(**inputs, use_cache=False).loss
