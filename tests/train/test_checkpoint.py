"""Stage image-layout fields: applied to the processor by load_for_training and saved with checkpoints."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoProcessor

import mm15.model  # noqa: F401  (registers the Auto classes)
from mm15.config import ConfigError
from mm15.model.presets import get_preset
from mm15.train.checkpoint import load_for_training, save_checkpoint
from mm15.train.config import StageConfig, load_stage
from tests.images import png

TINY = get_preset("tiny")


def layout(processor) -> tuple[str, str, str]:
    return processor.tile_indicators, processor.image_processor.overview, processor.image_processor.split_mode


def test_stage_layout_fields_default_to_none_and_take_overrides():
    stage = load_stage("cpt", "tiny")
    assert (stage.tile_indicators, stage.overview) == (None, None)
    changed = stage.with_overrides(tile_indicators="none", overview="before")  # as `--set` gives them
    assert (changed.tile_indicators, changed.overview) == ("none", "before")
    assert changed.with_overrides(tile_indicators=None).tile_indicators is None
    with pytest.raises(ConfigError, match="overview"):
        stage.with_overrides(overview="middle")
    with pytest.raises(ConfigError, match="tile_indicators"):
        stage.with_overrides(tile_indicators="arrows")


def test_load_for_training_applies_the_layout_and_checkpoints_keep_it(tmp_path):
    fresh, _ = load_for_training(TINY, StageConfig(name="t"), None)
    assert layout(fresh) == (TINY.tile_indicators, "after", "dynamic")  # None: the preset's

    stage = StageConfig(name="t", split="static", tile_indicators="seps", overview="before")
    processor, model = load_for_training(TINY, stage, None)
    assert layout(processor) == ("seps", "before", "static")
    image = png(3, (120, 80))
    encoded = processor.encode_chat([{"role": "user", "content": "<image>Hi"}], [image])
    n_placeholders = int((encoded["input_ids"] == processor.image_token_id).sum())
    assert n_placeholders == encoded["pixel_values"].shape[0] * processor.tokens_per_tile

    folder = save_checkpoint(tmp_path, 1, model, processor, {"step": 1}, keep=1)
    evaluated = AutoProcessor.from_pretrained(folder)  # how a later evaluation loads the checkpoint
    assert layout(evaluated) == ("seps", "before", "static")
    again = evaluated.encode_chat([{"role": "user", "content": "<image>Hi"}], [image])
    assert torch.equal(again["input_ids"], encoded["input_ids"])
    assert torch.equal(again["pixel_values"], encoded["pixel_values"])

    kept, _ = load_for_training(TINY, StageConfig(name="t", split="static"), folder)
    assert layout(kept) == ("seps", "before", "static")  # None: the checkpoint's
    changed, _ = load_for_training(
        TINY, StageConfig(name="t", tile_indicators="index", overview="after"), folder
    )
    assert layout(changed) == ("index", "after", "dynamic")
