"""The vision tower: any Hugging Face CLIP or SigLIP vision model, at the tile resolution.

A pretrained tower (e.g. 336 px) gets its position embeddings interpolated once to the tile size
(bicubic, CLS embedding kept apart, docs/RECIPE.md section 1) and its config updated, so a forward at
tile resolution needs no per-call interpolation and a saved model reloads at the tile size.
Encoder layers above the feature layer are dropped: they would be computed for nothing.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    CLIPVisionModel,
    PretrainedConfig,
    PreTrainedModel,
    SiglipVisionModel,
)

VISION_MODEL_TYPES = ("clip_vision_model", "siglip_vision_model")


def _check_type(config: PretrainedConfig) -> None:
    if config.model_type not in VISION_MODEL_TYPES:
        raise ValueError(f"vision tower must be one of {VISION_MODEL_TYPES}, got {config.model_type!r}")


def has_cls_token(config: PretrainedConfig) -> bool:
    """CLIP prepends a CLS token to the patch tokens; SigLIP does not."""
    return config.model_type == "clip_vision_model"


def patch_grid(config: PretrainedConfig) -> int:
    """Patches per side of one tile."""
    return config.image_size // config.patch_size


def kept_layers(config: PretrainedConfig, feature_layer: int) -> int:
    """Encoder layers needed for `hidden_states[feature_layer]` (index 0 is the embeddings)."""
    n = config.num_hidden_layers
    index = feature_layer if feature_layer >= 0 else n + 1 + feature_layer
    if not 1 <= index <= n:
        raise ValueError(f"feature layer {feature_layer} out of range for {n} encoder layers")
    return index


def _body(tower: PreTrainedModel) -> nn.Module:
    # transformers 5 vision models are flat; older layouts nest everything under `vision_model`
    return getattr(tower, "vision_model", tower)


def _encoder(tower: PreTrainedModel) -> nn.Module:
    return _body(tower).encoder


def drop_unused_layers(tower: PreTrainedModel, feature_layer: int) -> PreTrainedModel:
    """Remove what never reaches the features: encoder layers above the feature layer and the
    final LayerNorm (which only feeds the pooled output). The config keeps the original depth.

    Parameters without gradients would also break DDP's default unused-parameter check.
    """
    keep = kept_layers(tower.config, feature_layer)
    _encoder(tower).layers = _encoder(tower).layers[:keep]
    _body(tower).post_layernorm = nn.Identity()
    return tower


def build_vision_tower(config: PretrainedConfig, feature_layer: int) -> PreTrainedModel:
    """A randomly initialised tower from its config (image_size = the tile size)."""
    _check_type(config)
    if config.model_type == "siglip_vision_model":
        config.vision_use_head = False  # the attention-pooling head is not used by MM1.5
    return drop_unused_layers(AutoModel.from_config(config), feature_layer)


def interpolate_position_embeddings(tower: PreTrainedModel, image_size: int) -> PreTrainedModel:
    """Resize the tower's position embeddings to `image_size` once, in place (bicubic, CLS apart)."""
    config = tower.config
    _check_type(config)
    embeddings = _body(tower).embeddings
    old = embeddings.position_embedding.weight.data
    cls = has_cls_token(config)
    grid_old = math.isqrt(old.shape[0] - int(cls))
    grid_new = image_size // config.patch_size
    if grid_new == grid_old:
        return tower
    patch = old[int(cls) :].reshape(1, grid_old, grid_old, -1).permute(0, 3, 1, 2).float()
    patch = nn.functional.interpolate(patch, size=(grid_new, grid_new), mode="bicubic", align_corners=False)
    patch = patch.permute(0, 2, 3, 1).reshape(grid_new * grid_new, -1).to(old.dtype)
    new = torch.cat([old[:1], patch]) if cls else patch

    # a new weight in the same (already initialised) module: post_init will not re-initialise it
    embeddings.position_embedding.weight = nn.Parameter(new)
    embeddings.position_embedding.num_embeddings = new.shape[0]
    embeddings.position_ids = torch.arange(new.shape[0], device=new.device).unsqueeze(0)
    embeddings.image_size = image_size
    embeddings.num_patches = grid_new * grid_new
    embeddings.num_positions = new.shape[0]
    config.image_size = image_size
    return tower


def load_vision_tower(path: str, image_size: int, feature_layer: int, **kwargs) -> PreTrainedModel:
    """A pretrained CLIP/SigLIP vision tower from a local folder, resized to `image_size`.

    The folder may hold a full CLIP/SigLIP model (text tower ignored) or a vision model alone.
    """
    full = AutoConfig.from_pretrained(path, local_files_only=True)
    vision_config = getattr(full, "vision_config", full)
    _check_type(vision_config)
    cls = CLIPVisionModel if vision_config.model_type == "clip_vision_model" else SiglipVisionModel
    extra = {"vision_use_head": False} if cls is SiglipVisionModel else {}
    tower = cls.from_pretrained(path, local_files_only=True, **extra, **kwargs)
    interpolate_position_embeddings(tower, image_size)
    return drop_unused_layers(tower, feature_layer)
