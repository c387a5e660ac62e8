"""`mm15 model info`: a preset's architecture and parameter counts per component.

The model is built on the `meta` device from the preset's configs: counting needs no weights,
no memory and no download, even for the 1B/3B presets.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mm15.model.configuration import MM15Config
from mm15.model.modeling import MM15ForConditionalGeneration
from mm15.model.moe import MoEFeedForward
from mm15.model.presets import get_preset, padded_vocab_size
from mm15.model.splitting import image_token_count
from mm15.model.tokenizer import build_byte_tokenizer
from mm15.model.vision import kept_layers, patch_grid


def count_parameters(module: nn.Module) -> int:
    """Parameters of a module, shared (tied) tensors counted once."""
    return sum(p.numel() for p in module.parameters())


def _active_lm_parameters(model: MM15ForConditionalGeneration) -> int:
    # per token an MoE layer runs top_k of its experts
    total = count_parameters(model.language_model)
    for moe in model.language_model.modules():
        if isinstance(moe, MoEFeedForward):
            experts = moe.gate_up.numel() + moe.down.numel()
            total -= experts - experts * moe.top_k // moe.num_experts
    return total


def _moe_summary(config: MM15Config) -> str:
    if not config.moe_num_experts:
        return "off"
    return f"{config.moe_num_experts} experts, top-{config.moe_top_k}, every {config.moe_every} layers"


def describe(preset: str) -> dict[str, Any]:
    """Architecture summary and parameter counts (vision tower, connector, LM, total) of a preset."""
    p = get_preset(preset)
    vocab = None if p.pretrained else padded_vocab_size(len(build_byte_tokenizer()))
    config = p.model_config(image_token_id=0, vocab_size=vocab)
    with torch.device("meta"):
        model = MM15ForConditionalGeneration(config)
    vision, text = config.vision_config, config.text_config
    split = p.split_config
    params = {
        "vision_tower": count_parameters(model.vision_tower),
        "connector": count_parameters(model.connector),
        "language_model": count_parameters(model.language_model),
        "total": count_parameters(model),
    }
    if config.moe_num_experts:
        params["language_model_active"] = _active_lm_parameters(model)
    return {
        "preset": p.name,
        "description": p.description,
        "vision": {
            "backbone": p.vision_name or "built from config",
            "model_type": vision.model_type,
            "hidden_size": vision.hidden_size,
            "layers": f"{kept_layers(vision, config.vision_feature_layer)} of {vision.num_hidden_layers} "
            f"(feature layer {config.vision_feature_layer})",
            "heads": vision.num_attention_heads,
            "patch_size": vision.patch_size,
            "tile": vision.image_size,
            "patches_per_tile": patch_grid(vision) ** 2,
        },
        "connector": {
            "type": "C-Abstractor",
            "tokens_per_tile": config.tokens_per_tile,
            "depth_per_stage": config.connector_depth,
            "width": config.connector_width,
        },
        "language_model": {
            "backbone": p.lm_name or "built from config",
            "model_type": text.model_type,
            "hidden_size": text.hidden_size,
            "layers": text.num_hidden_layers,
            "heads": f"{text.num_attention_heads} (kv {getattr(text, 'num_key_value_heads', None)})",
            "intermediate_size": text.intermediate_size,
            "vocab_size": text.vocab_size,
            "moe": _moe_summary(config),
        },
        "splitting": {
            "mode": split.mode,
            "grids": f"({split.n_min}, {split.n_max})" if split.mode == "dynamic" else str(split.static_grid),
            "max_image_tokens": image_token_count(split.largest_grid(), config.tokens_per_tile),
            "tile_indicators": p.tile_indicators,
        },
        "parameters": params,
    }


def _human(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


def format_description(d: dict[str, Any]) -> str:
    """A readable table of :func:`describe`'s output."""
    lines = [f"preset {d['preset']}: {d['description']}", ""]
    for section in ("vision", "connector", "language_model", "splitting"):
        lines.append(section.replace("_", " "))
        lines += [f"  {key:<20} {value}" for key, value in d[section].items()]
    lines += ["", "parameters"]
    total = d["parameters"]["total"]
    for key, n in d["parameters"].items():
        share = "" if key in ("total", "language_model_active") else f"  {100 * n / total:5.1f}%"
        lines.append(f"  {key:<22} {n:>15,}  {_human(n):>8}{share}")
    return "\n".join(lines)
