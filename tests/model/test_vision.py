import pytest
import torch
from torch.nn import functional as F
from transformers import (
    CLIPConfig,
    CLIPModel,
    CLIPVisionConfig,
    CLIPVisionModel,
    LlamaConfig,
    SiglipVisionConfig,
    SiglipVisionModel,
)

from mm15.model.vision import (
    build_vision_tower,
    drop_unused_layers,
    interpolate_position_embeddings,
    kept_layers,
    load_vision_tower,
)

SMALL = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2, patch_size=8)


def clip(image_size: int = 32) -> CLIPVisionModel:
    torch.manual_seed(0)
    return CLIPVisionModel(CLIPVisionConfig(image_size=image_size, **SMALL)).eval()


def test_position_embeddings_interpolated_once_with_cls_apart():
    tower = clip(32)  # 4 x 4 patches + CLS
    old = tower.embeddings.position_embedding.weight.detach().clone()
    interpolate_position_embeddings(tower, 64)
    new = tower.embeddings.position_embedding.weight.detach()
    assert new.shape == (1 + 8 * 8, 32)
    assert torch.equal(new[0], old[0])  # CLS untouched
    grid = old[1:].reshape(1, 4, 4, 32).permute(0, 3, 1, 2)
    expected = F.interpolate(grid, size=(8, 8), mode="bicubic", align_corners=False).permute(0, 2, 3, 1)
    assert torch.allclose(new[1:], expected.reshape(64, 32), atol=1e-6)
    assert tower.config.image_size == 64
    out = tower(pixel_values=torch.randn(2, 3, 64, 64))  # no per-call interpolation needed
    assert out.last_hidden_state.shape == (2, 65, 32)


def test_siglip_has_no_cls_to_keep():
    tower = SiglipVisionModel(SiglipVisionConfig(image_size=32, **SMALL)).eval()
    interpolate_position_embeddings(tower, 48)
    assert tower.embeddings.position_embedding.weight.shape == (36, 32)
    assert tower(pixel_values=torch.randn(1, 3, 48, 48)).last_hidden_state.shape == (1, 36, 32)


def test_layers_above_the_feature_layer_are_dropped_without_changing_features():
    full = clip()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = full(pixel_values=x, output_hidden_states=True).hidden_states[-2]
        truncated = drop_unused_layers(clip(), feature_layer=-2)
        got = truncated(pixel_values=x, output_hidden_states=True).hidden_states[-1]
    assert len(truncated.encoder.layers) == 2
    assert torch.allclose(got, expected, atol=1e-6)
    assert kept_layers(full.config, -1) == 3 and kept_layers(full.config, 1) == 1
    with pytest.raises(ValueError, match="out of range"):
        kept_layers(full.config, -4)


def test_only_clip_and_siglip_towers_are_accepted():
    with pytest.raises(ValueError, match="vision tower"):
        build_vision_tower(LlamaConfig(), feature_layer=-1)


@pytest.mark.parametrize("layout", ["vision_only", "full_clip"])
def test_pretrained_tower_loads_from_a_local_folder_at_the_tile_size(tmp_path, layout):
    torch.manual_seed(0)
    if layout == "vision_only":
        source = CLIPVisionModel(CLIPVisionConfig(image_size=32, **SMALL))
        reference = source
    else:
        config = CLIPConfig(
            vision_config=dict(image_size=32, **SMALL),
            text_config=dict(
                hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2
            ),
            projection_dim=16,
        )
        source = CLIPModel(config)
        reference = source.vision_model
    source.save_pretrained(tmp_path)
    tower = load_vision_tower(str(tmp_path), image_size=48, feature_layer=-2)
    assert tower.config.image_size == 48 and len(tower.encoder.layers) == 2
    ref_layer = reference.encoder.layers[1].mlp.fc1.weight
    assert torch.equal(tower.encoder.layers[1].mlp.fc1.weight, ref_layer)
    ref_cls = reference.embeddings.position_embedding.weight[0]
    assert torch.equal(tower.embeddings.position_embedding.weight[0], ref_cls)
