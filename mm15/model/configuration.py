"""MM15Config: vision tower + C-Abstractor + causal LM, one config dumped with every checkpoint."""

from __future__ import annotations

from typing import Literal

from transformers import AutoConfig, PretrainedConfig
from transformers.configuration_utils import SubConfigSpec

LOSS_REDUCTIONS = ("sample", "token")


class MM15Config(PretrainedConfig):
    """Configuration of :class:`~mm15.model.modeling.MM15ForConditionalGeneration`.

    - `vision_config`: a CLIP or SigLIP vision config whose `image_size` is the tile size.
    - `text_config`: any Hugging Face causal LM config.
    - `image_token_id`: the `<image>` placeholder id; `tokens_per_tile`: connector outputs per view
      (a square, 144 in the paper); `vision_feature_layer`: the hidden state fed to the connector.
    - `connector_depth` / `connector_width`: bottleneck blocks per C-Abstractor stage and their channels.
    - `moe_num_experts` > 0 turns every `moe_every`-th LM MLP into top-`moe_top_k` experts, with
      load-balance and router z-loss weighted by their coefficients in `aux_loss`.
    - `loss_reduction`: "sample" averages the token loss within each sample, then over samples
      (long answers do not dominate); "token" averages over all label tokens of the batch.
    """

    model_type = "mm15"
    sub_configs_defaults = {
        "vision_config": SubConfigSpec(config_class=AutoConfig, model_type="clip_vision_model"),
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="llama"),
    }

    vision_config: dict | PretrainedConfig | None = None
    text_config: dict | PretrainedConfig | None = None
    image_token_id: int = 3
    tokens_per_tile: int = 144
    vision_feature_layer: int = -2
    connector_depth: int = 3
    connector_width: int = 1024
    initializer_range: float = 0.02
    moe_num_experts: int = 0
    moe_top_k: int = 2
    moe_every: int = 2
    moe_intermediate_size: int | None = None
    moe_load_balance_coef: float = 0.01
    moe_z_loss_coef: float = 0.001
    loss_reduction: Literal["sample", "token"] = "sample"
    tie_word_embeddings: bool = False  # the LM ties its own head; nothing to tie at this level

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.loss_reduction not in LOSS_REDUCTIONS:
            raise ValueError(f"loss_reduction must be one of {LOSS_REDUCTIONS}, got {self.loss_reduction!r}")

    @property
    def tile_size(self) -> int:
        return self.vision_config.image_size
