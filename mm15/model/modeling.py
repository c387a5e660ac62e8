"""MM15ForConditionalGeneration: vision tower -> C-Abstractor -> any Hugging Face causal LM.

Image features are written HF-style into the `<image>` placeholder positions, after a strict
count check against the one token-count function of :mod:`mm15.model.splitting`. The LM is a
complete `AutoModelForCausalLM`, so any checkpoint loads into it unchanged; generation, KV cache,
safetensors save/load and the Auto classes come from `transformers`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from transformers import AutoModelForCausalLM, GenerationMixin, PreTrainedModel
from transformers.cache_utils import Cache
from transformers.modeling_outputs import CausalLMOutputWithPast
from transformers.utils.deprecation import deprecate_kwarg

from mm15.model.cabstractor import CAbstractor
from mm15.model.configuration import MM15Config
from mm15.model.generation_images import repeat_images
from mm15.model.loss import reduce_token_losses, supervised_positions
from mm15.model.moe import MoEFeedForward, replace_mlps, router_losses
from mm15.model.splitting import image_token_count, tiles_per_image
from mm15.model.vision import build_vision_tower, has_cls_token, patch_grid

# LMs whose logits are exactly `lm_head(final hidden state)`: their loss can skip the logits of
# unsupervised positions (image tokens, prompts), which at a 150k vocabulary dominate memory.
PLAIN_HEAD_MODEL_TYPES = frozenset({"llama", "qwen2", "qwen3", "mistral", "smollm3", "olmo2", "phi3"})


@dataclass
class MM15CausalLMOutputWithPast(CausalLMOutputWithPast):
    """Causal LM output plus the MoE router losses (None without MoE).

    `aux_loss` = load-balance coef * `load_balance_loss` + z-loss coef * `router_z_loss`, already
    included in `loss`. `logits` is None when labels were given to a plain-head LM (see forward).
    """

    aux_loss: torch.Tensor | None = None
    load_balance_loss: torch.Tensor | None = None
    router_z_loss: torch.Tensor | None = None


class MM15PreTrainedModel(PreTrainedModel):
    config_class = MM15Config
    config: MM15Config
    base_model_prefix = "mm15"
    input_modalities = ("image", "text")
    supports_gradient_checkpointing = True
    _supports_flash_attn = True
    _supports_sdpa = True
    _supports_flex_attn = True
    _supports_attention_backend = True

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, CAbstractor):
            nn.init.trunc_normal_(module.pos_embed, std=self.config.initializer_range)


class MM15ForConditionalGeneration(MM15PreTrainedModel, GenerationMixin):
    """The MM1.5 model: `vision_tower`, `connector` (C-Abstractor) and `language_model`."""

    def __init__(
        self,
        config: MM15Config,
        vision_tower: PreTrainedModel | None = None,
        language_model: PreTrainedModel | None = None,
    ):
        """Built from `config`, or around a pretrained tower / LM (see `mm15.model.presets.build_model`).

        A given tower must already be at the tile size with its unused layers dropped
        (`mm15.model.vision.load_vision_tower`); pretrained parts keep their weights.
        """
        super().__init__(config)
        vision = config.vision_config
        self.vision_tower = vision_tower or build_vision_tower(vision, config.vision_feature_layer)
        self.connector = CAbstractor(
            vision_dim=vision.hidden_size,
            lm_dim=config.text_config.hidden_size,
            num_patches=patch_grid(vision) ** 2,
            num_queries=config.tokens_per_tile,
            depth=config.connector_depth,
            width=config.connector_width,
        )
        self.language_model = language_model or AutoModelForCausalLM.from_config(config.text_config)
        # one config object per part, so resizing embeddings or the tower shows in config.json
        config.vision_config = self.vision_tower.config
        config.text_config = self.language_model.config
        self._moe_layers: list[MoEFeedForward] = []
        if config.moe_num_experts:
            self._moe_layers = replace_mlps(
                self.language_model,
                config.moe_num_experts,
                config.moe_top_k,
                config.moe_every,
                config.moe_intermediate_size,
                upcycle=language_model is not None,  # a pretrained LM: experts start as its MLPs
            )
        self.post_init()

    # -- embeddings (for resize_token_embeddings, generation, tying) -------------------------------

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.language_model.get_output_embeddings()

    def set_output_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_output_embeddings(value)

    def get_decoder(self) -> nn.Module:
        return self.language_model.get_decoder()

    def resize_token_embeddings(self, *args: Any, **kwargs: Any) -> nn.Embedding:
        return self.language_model.resize_token_embeddings(*args, **kwargs)

    # -- images ------------------------------------------------------------------------------------

    def get_image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Views (N, 3, tile, tile) -> connector outputs (N, tokens_per_tile, LM width)."""
        dtype = self.connector.readout[0].weight.dtype
        out = self.vision_tower(pixel_values=pixel_values.to(dtype), output_hidden_states=True)
        patches = out.hidden_states[-1]  # the feature layer: layers above it were dropped
        if has_cls_token(self.config.vision_config):
            patches = patches[:, 1:]
        return self.connector(patches)

    def merge_image_features(
        self,
        input_ids: torch.Tensor,
        inputs_embeds: torch.Tensor,
        image_features: torch.Tensor,
        image_grids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Write the features into the `<image>` positions, in order; counts must match exactly."""
        placeholders = input_ids == self.config.image_token_id
        n_tokens = int(placeholders.sum())
        n_views, q = image_features.shape[:2]
        if image_grids is not None:
            grids = [tuple(g) for g in image_grids.tolist()]
            n_expected_views = sum(tiles_per_image(g) for g in grids)
            n_expected_tokens = sum(image_token_count(g, q) for g in grids)
            if n_expected_views != n_views:
                raise ValueError(
                    f"image_grids describe {n_expected_views} views but pixel_values holds {n_views}"
                )
            if n_expected_tokens != n_tokens:
                raise ValueError(
                    f"image_grids need {n_expected_tokens} image tokens but input_ids holds {n_tokens}"
                )
        if n_tokens != n_views * q:
            raise ValueError(
                f"image tokens and image features differ: {n_tokens} placeholder tokens in input_ids, "
                f"{n_views} views x {q} tokens = {n_views * q} features"
            )
        features = image_features.reshape(-1, image_features.shape[-1]).to(inputs_embeds.dtype)
        return inputs_embeds.masked_scatter(placeholders.unsqueeze(-1), features)

    def embed(
        self,
        input_ids: torch.Tensor,
        pixel_values: torch.Tensor | None = None,
        image_grids: torch.Tensor | None = None,
        decoding: bool = False,
    ) -> torch.Tensor:
        """Token embeddings with image features in the placeholder positions."""
        inputs_embeds = self.get_input_embeddings()(input_ids)
        if pixel_values is not None and len(pixel_values):
            features = self.get_image_features(pixel_values)
            return self.merge_image_features(input_ids, inputs_embeds, features, image_grids)
        if not decoding and bool((input_ids == self.config.image_token_id).any()):
            raise ValueError("input_ids hold image tokens but no pixel_values were given")
        if self.training and torch.is_grad_enabled():
            # a text-only training batch still runs the tower on one blank tile, weighted 0: every
            # parameter gets a gradient, so DDP's reducer and FSDP's collectives see the same work on
            # every rank whether or not its batch holds images
            tile = self.config.vision_config.image_size
            blank = inputs_embeds.new_zeros(1, 3, tile, tile)
            inputs_embeds = inputs_embeds + 0.0 * self.get_image_features(blank).sum()
        return inputs_embeds

    def _expand_inputs_for_generation(
        self,
        expand_size: int = 1,
        is_encoder_decoder: bool = False,
        input_ids: torch.Tensor | None = None,
        **kwargs,
    ) -> tuple[torch.Tensor | None, dict[str, Any]]:
        # beams / return sequences repeat each sample; its views must repeat with it, as a block
        pixel_values, image_grids = kwargs.pop("pixel_values", None), kwargs.pop("image_grids", None)
        if expand_size > 1 and input_ids is not None and pixel_values is not None and len(pixel_values):
            pixel_values, image_grids = repeat_images(
                self.config, input_ids, pixel_values, image_grids, expand_size
            )
        input_ids, kwargs = super()._expand_inputs_for_generation(
            expand_size, is_encoder_decoder, input_ids, **kwargs
        )
        return input_ids, kwargs | {"pixel_values": pixel_values, "image_grids": image_grids}

    # -- forward -----------------------------------------------------------------------------------

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        image_grids: torch.LongTensor | None = None,
        return_logits: bool = False,
        sample_index: torch.LongTensor | None = None,
        **kwargs: Any,
    ) -> MM15CausalLMOutputWithPast:
        """Next-token logits, and with `labels` the loss (+ MoE aux loss).

        With labels and a plain-head LM, logits are computed only where a label is, and `logits`
        is None unless `return_logits=True`. `sample_index` (batch, seq) numbers the samples of packed
        rows (see `mm15.train.packing`): the "sample" loss reduction then averages per packed sample.
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        if inputs_embeds is None:
            decoding = cache is not None and cache.get_seq_length() > 0
            inputs_embeds = self.embed(input_ids, pixel_values, image_grids, decoding)
        elif pixel_values is not None and len(pixel_values):
            raise ValueError("pixel_values need input_ids to find the image placeholders")
        lm_inputs = dict(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            use_cache=use_cache,
            **kwargs,
        )

        loss = logits = None
        if (
            labels is not None
            and not return_logits
            and self.config.text_config.model_type in PLAIN_HEAD_MODEL_TYPES
        ):
            out = self.language_model.get_decoder()(**lm_inputs)
            rows, cols, targets = supervised_positions(labels)
            selected = self.language_model.get_output_embeddings()(out.last_hidden_state[rows, cols])
            loss = self._lm_loss(selected, targets, rows, cols, labels.shape[0], sample_index)
        else:
            out = self.language_model(**lm_inputs, logits_to_keep=logits_to_keep)
            logits = out.logits
            if labels is not None:
                rows, cols, targets = supervised_positions(labels)
                loss = self._lm_loss(logits[rows, cols], targets, rows, cols, labels.shape[0], sample_index)

        aux = load_balance = z_loss = None
        if (losses := router_losses(self._moe_layers)) is not None:
            load_balance, z_loss = losses
            aux = self.config.moe_load_balance_coef * load_balance + self.config.moe_z_loss_coef * z_loss
            if loss is not None:
                loss = loss + aux
        return MM15CausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            cache=getattr(out, "cache", None),
            hidden_states=out.hidden_states,
            attentions=out.attentions,
            aux_loss=aux,
            load_balance_loss=load_balance,
            router_z_loss=z_loss,
        )

    def _lm_loss(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        rows: torch.Tensor,
        cols: torch.Tensor,
        batch: int,
        sample_index: torch.Tensor | None,
    ) -> torch.Tensor:
        losses = F.cross_entropy(logits.float(), targets, reduction="none")
        if sample_index is not None:  # packed rows: a label belongs to the sample of its target token
            rows, batch = sample_index[:, 1:][rows, cols], int(sample_index.max()) + 1
        return reduce_token_losses(losses, rows, batch, self.config.loss_reduction)
