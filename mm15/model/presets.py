"""Named model presets (docs/ARCHITECTURE.md "Presets") and the builders that turn them into objects.

- `tiny`: a from-scratch VLM that trains on 2 CPU cores in minutes (measured: docs/ARCHITECTURE.md "Presets");
  byte-level tokenizer, nothing downloaded. `tiny-moe` adds top-2 experts every second layer.
- `1b`, `3b`: public backbones at the paper's settings (672 px tiles, 144 tokens per tile,
  (4, 9) grids), loaded only from local folders the user names. Their configs are written out
  here, so `mm15 model info` counts parameters without any download.
"""

from __future__ import annotations

import os
from dataclasses import field, replace
from typing import Any, Literal

import torch
from pydantic import ConfigDict
from pydantic.dataclasses import dataclass
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from mm15.model.configuration import MM15Config
from mm15.model.image_processing import CLIP_MEAN, CLIP_STD, MM15ImageProcessor
from mm15.model.modeling import MM15ForConditionalGeneration
from mm15.model.processing import MM15Processor
from mm15.model.splitting import SplitConfig
from mm15.model.tokenizer import SPECIAL, add_mm15_tokens, build_byte_tokenizer
from mm15.model.vision import load_vision_tower

SIGLIP_MEAN = SIGLIP_STD = (0.5, 0.5, 0.5)


@dataclass(frozen=True, config=ConfigDict(extra="forbid", arbitrary_types_allowed=False))
class ModelPreset:
    """Everything that defines a model: backbones, splitting, connector, tokenizer, options.

    A typed, validated dataclass: a misspelt field or a value of the wrong type fails on construction
    (also through `dataclasses.replace`).

    `vision` / `text` are Hugging Face config dicts (with `model_type`); for pretrained
    backbones they mirror the public checkpoint named in `vision_name` / `lm_name`, whose local
    copies `vision_path` / `lm_path` point at (set them with `dataclasses.replace` or pass them
    to the builders). `vision["image_size"]` is the backbone's native size; the model runs at `tile`.
    """

    name: str
    description: str
    vision: dict[str, Any]
    text: dict[str, Any]
    vision_name: str = ""
    lm_name: str = ""
    tokenizer: Literal["byte", "pretrained"] = (
        "byte"  # "byte": from scratch, built locally; "pretrained": backbones from local paths
    )
    tile: int = 672
    n_min: int = 4
    n_max: int = 9
    split_mode: Literal["dynamic", "static", "none"] = "dynamic"
    static_grid: tuple[int, int] = (2, 2)
    tokens_per_tile: int = 144
    tile_indicators: Literal["index", "seps", "none"] = "index"
    vision_feature_layer: int = -2
    connector_depth: int = 3
    connector_width: int = 1024
    image_mean: tuple[float, float, float] = CLIP_MEAN
    image_std: tuple[float, float, float] = CLIP_STD
    moe_num_experts: int = 0
    loss_reduction: Literal["sample", "token"] = "sample"
    vision_path: str | None = None
    lm_path: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # more MM15Config fields

    @property
    def pretrained(self) -> bool:
        """Whether the backbones (and the LM's tokenizer) load from `vision_path` / `lm_path`."""
        return self.tokenizer == "pretrained"

    @property
    def split_config(self) -> SplitConfig:
        return SplitConfig(self.tile, self.n_min, self.n_max, self.split_mode, self.static_grid)

    def model_config(self, image_token_id: int, vocab_size: int | None = None) -> MM15Config:
        """The MM15Config built from this preset's dicts (vision at the tile size)."""
        text = dict(self.text) | ({"vocab_size": vocab_size} if vocab_size else {})
        return MM15Config(
            vision_config=dict(self.vision) | {"image_size": self.tile},
            text_config=text,
            image_token_id=image_token_id,
            tokens_per_tile=self.tokens_per_tile,
            vision_feature_layer=self.vision_feature_layer,
            connector_depth=self.connector_depth,
            connector_width=self.connector_width,
            moe_num_experts=self.moe_num_experts,
            loss_reduction=self.loss_reduction,
            **self.extra,
        )


TINY = ModelPreset(
    name="tiny",
    description="from scratch on 2 CPU cores: ViT 96x2 (patch 16, 112 px tiles), C-Abstractor to 16 tokens, "
    "Llama 128x2, byte-level tokenizer",
    vision={
        "model_type": "clip_vision_model",
        "hidden_size": 96,
        "intermediate_size": 384,
        "num_hidden_layers": 2,
        "num_attention_heads": 3,
        "patch_size": 16,
        "image_size": 112,
    },
    text={
        "model_type": "llama",
        "hidden_size": 128,
        "intermediate_size": 384,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "max_position_embeddings": 2048,
        "initializer_range": 0.05,  # docs/ARCHITECTURE.md "Presets": 0.05 learns far faster than 0.02 at this size
        "tie_word_embeddings": False,
    },
    tile=112,
    n_min=1,
    n_max=4,
    tokens_per_tile=16,
    vision_feature_layer=-1,
    connector_depth=1,
    connector_width=128,
)

TINY_MOE = replace(
    TINY,
    name="tiny-moe",
    description=TINY.description + "; 4 experts top-2 every 2nd layer",
    moe_num_experts=4,
)

CLIP_L_336 = {  # openai/clip-vit-large-patch14-336
    "model_type": "clip_vision_model",
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "patch_size": 14,
    "image_size": 336,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-5,
}

SIGLIP_SO400M_384 = {  # google/siglip-so400m-patch14-384
    "model_type": "siglip_vision_model",
    "hidden_size": 1152,
    "intermediate_size": 4304,
    "num_hidden_layers": 27,
    "num_attention_heads": 16,
    "patch_size": 14,
    "image_size": 384,
    "hidden_act": "gelu_pytorch_tanh",
    "layer_norm_eps": 1e-6,
}


def _qwen25(hidden: int, intermediate: int, layers: int, heads: int, max_positions: int) -> dict[str, Any]:
    return {
        "model_type": "qwen2",
        "hidden_size": hidden,
        "intermediate_size": intermediate,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": 2,
        "vocab_size": 151936,
        "max_position_embeddings": max_positions,
        "rope_theta": 1000000.0,
        "rms_norm_eps": 1e-6,
        "hidden_act": "silu",
        "tie_word_embeddings": True,
    }


ONE_B = ModelPreset(
    name="1b",
    description="CLIP ViT-L/14-336 + Qwen2.5-1.5B (1.3B non-embedding, close to MM1.5-1B's LLM), "
    "672 px tiles, 144 tokens per tile, (4, 9) grids",
    vision=CLIP_L_336,
    text=_qwen25(1536, 8960, 28, 12, 131072),
    vision_name="openai/clip-vit-large-patch14-336",
    lm_name="Qwen/Qwen2.5-1.5B",
    tokenizer="pretrained",
)

THREE_B = ModelPreset(
    name="3b",
    description="SigLIP so400m/14-384 + Qwen2.5-3B, 672 px tiles, 144 tokens per tile, (4, 9) grids",
    vision=SIGLIP_SO400M_384,
    text=_qwen25(2048, 11008, 36, 16, 32768),
    vision_name="google/siglip-so400m-patch14-384",
    lm_name="Qwen/Qwen2.5-3B",
    tokenizer="pretrained",
    image_mean=SIGLIP_MEAN,
    image_std=SIGLIP_STD,
)

PRESETS: dict[str, ModelPreset] = {p.name: p for p in (TINY, TINY_MOE, ONE_B, THREE_B)}


def get_preset(name: str | ModelPreset) -> ModelPreset:
    """A preset by name (a preset passes through)."""
    if isinstance(name, ModelPreset):
        return name
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; known: {', '.join(PRESETS)}")
    return PRESETS[name]


def _require(path: str | None, what: str, preset: ModelPreset) -> str:
    """The local folder of a backbone: given, the preset's field, else $MM15_VISION_PATH / $MM15_LM_PATH
    (how training, evaluation and the flows on every worker find them)."""
    path = path or os.environ.get(f"MM15_{what.upper()}_PATH")
    if not path:
        raise ValueError(
            f"preset {preset.name!r} loads its {what} from a local folder: set MM15_{what.upper()}_PATH "
            f"(a local copy of {preset.vision_name if what == 'vision' else preset.lm_name})"
        )
    return path


def build_processor(preset: str | ModelPreset, lm_path: str | None = None) -> MM15Processor:
    """The preset's processor: tokenizer (byte-level, or the LM's + MM1.5 tokens) and image processor."""
    preset = get_preset(preset)
    if not preset.pretrained:
        tokenizer = build_byte_tokenizer()
    else:
        path = _require(lm_path or preset.lm_path, "lm", preset)
        tokenizer = add_mm15_tokens(AutoTokenizer.from_pretrained(path, local_files_only=True))
    split = preset.split_config
    image_processor = MM15ImageProcessor(
        tile_size=split.tile,
        n_min=split.n_min,
        n_max=split.n_max,
        split_mode=split.mode,
        static_grid=split.static_grid,
        max_split_images=split.max_split_images,
        image_mean=preset.image_mean,
        image_std=preset.image_std,
    )
    return MM15Processor(
        image_processor,
        tokenizer,
        tokens_per_tile=preset.tokens_per_tile,
        tile_indicators=preset.tile_indicators,
    )


def padded_vocab_size(n_tokens: int, multiple: int = 16) -> int:
    """Embedding rows for `n_tokens` tokens, rounded up to a multiple (faster matmuls)."""
    return -(-n_tokens // multiple) * multiple


def build_model(
    preset: str | ModelPreset,
    processor: MM15Processor | None = None,
    vision_path: str | None = None,
    lm_path: str | None = None,
    dtype: torch.dtype | None = None,
) -> MM15ForConditionalGeneration:
    """The preset's model, matching `processor` (built if not given).

    `tiny` is initialised from configs. `1b`/`3b` load their tower and LM from local folders
    (`vision_path`, `lm_path`, or the preset's fields); the C-Abstractor starts fresh.
    """
    preset = get_preset(preset)
    processor = processor or build_processor(preset, lm_path)
    tokenizer = processor.tokenizer
    if not preset.pretrained:
        config = preset.model_config(processor.image_token_id, vocab_size=padded_vocab_size(len(tokenizer)))
        model = MM15ForConditionalGeneration(config)
    else:
        lm = AutoModelForCausalLM.from_pretrained(
            _require(lm_path or preset.lm_path, "lm", preset), local_files_only=True, dtype=dtype
        )
        if lm.get_input_embeddings().num_embeddings < len(tokenizer):
            lm.resize_token_embeddings(padded_vocab_size(len(tokenizer), 64))
        tower = load_vision_tower(
            _require(vision_path or preset.vision_path, "vision", preset),
            preset.tile,
            preset.vision_feature_layer,
            dtype=dtype,
        )
        config = preset.model_config(processor.image_token_id)
        config.vision_config, config.text_config = tower.config, lm.config
        model = MM15ForConditionalGeneration(config, vision_tower=tower, language_model=lm)
    if dtype is not None:
        model.to(dtype)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.convert_tokens_to_ids(SPECIAL.end),
        pad_token_id=tokenizer.pad_token_id,
    )
    return model
