import dataclasses

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import (
    AutoModelForImageTextToText,
    CLIPVisionConfig,
    CLIPVisionModel,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from mm15.model.modeling import MM15ForConditionalGeneration
from mm15.model.moe import MoEFeedForward
from mm15.model.presets import PRESETS, ModelPreset, build_model, build_processor, get_preset
from mm15.model.tokenizer import SPECIAL


def test_presets_are_named_frozen_dataclasses():
    assert {"tiny", "tiny-moe", "1b", "3b"} <= set(PRESETS)
    tiny = get_preset("tiny")
    assert get_preset(tiny) is tiny
    with pytest.raises(dataclasses.FrozenInstanceError):
        tiny.tile = 224
    for name in ("1b", "3b"):
        preset = get_preset(name)
        assert (preset.tile, preset.tokens_per_tile, preset.n_min, preset.n_max) == (672, 144, 4, 9)
        assert preset.vision_name and preset.lm_name and preset.tokenizer == "pretrained"


def test_unknown_preset_is_a_one_line_error_naming_the_known_ones():
    with pytest.raises(ValueError) as error:
        get_preset("7b")
    message = str(error.value)
    assert "\n" not in message and "'7b'" in message
    assert all(name in message for name in PRESETS)


def test_tiny_model_matches_its_processor(tiny_processor, tiny_model):
    config = tiny_model.config
    assert config.image_token_id == tiny_processor.image_token_id
    assert config.text_config.vocab_size >= len(tiny_processor.tokenizer)
    assert config.tokens_per_tile == tiny_processor.tokens_per_tile
    assert config.tile_size == tiny_processor.image_processor.tile_size == 112
    assert config.text_config.initializer_range == 0.05
    assert tiny_model.generation_config.eos_token_id == tiny_processor.tokenizer.convert_tokens_to_ids(
        SPECIAL.end
    )


def test_pretrained_presets_require_local_folders(monkeypatch):
    monkeypatch.delenv("MM15_LM_PATH", raising=False)
    monkeypatch.delenv("MM15_VISION_PATH", raising=False)
    with pytest.raises(ValueError, match="MM15_LM_PATH"):
        build_processor("1b")
    with pytest.raises(ValueError, match="Qwen/Qwen2.5-3B"):
        build_model("3b")


@pytest.fixture(scope="module")
def local_backbones(tmp_path_factory):
    """A tiny CLIP tower and a tiny Qwen2 LM with its own BPE tokenizer, saved like hub checkpoints."""
    root = tmp_path_factory.mktemp("backbones")
    torch.manual_seed(0)
    vision = CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=3,
            num_attention_heads=2,
            patch_size=8,
            image_size=32,
        )
    )
    vision.save_pretrained(root / "vision")
    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<unk>", "<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    backend.train_from_iterator(["a red square", "a blue circle"] * 20, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<|endoftext|>", unk_token="<unk>"
    )
    tokenizer.save_pretrained(root / "lm")
    lm = Qwen2ForCausalLM(
        Qwen2Config(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            vocab_size=len(tokenizer),
            tie_word_embeddings=True,
        )
    )
    lm.save_pretrained(root / "lm")
    return root, vision, lm


def small_1b(root, **changes) -> ModelPreset:
    """The 1b preset's code path at toy sizes, on the local toy backbones."""
    return dataclasses.replace(
        get_preset("1b"),
        tile=48,
        n_min=1,
        n_max=4,
        tokens_per_tile=4,
        connector_width=16,
        connector_depth=1,
        vision_path=str(root / "vision"),
        lm_path=str(root / "lm"),
        **changes,
    )


def test_backbone_folders_can_come_from_the_environment(local_backbones, monkeypatch):
    """How `mm15 train --preset 1b` and the flows on every worker find the backbones."""
    root, _, _ = local_backbones
    monkeypatch.setenv("MM15_VISION_PATH", str(root / "vision"))
    monkeypatch.setenv("MM15_LM_PATH", str(root / "lm"))
    preset = dataclasses.replace(small_1b(root), vision_path=None, lm_path=None)
    model = build_model(preset, build_processor(preset))
    assert model.config.vision_config.image_size == 48


def test_pretrained_backbones_load_from_local_folders(local_backbones, make_image, tmp_path):
    root, vision, lm = local_backbones
    preset = small_1b(root)
    processor = build_processor(preset)
    model = build_model(preset, processor).eval()
    assert all(processor.tokenizer.convert_tokens_to_ids(t) is not None for t in dataclasses.astuple(SPECIAL))
    assert model.get_input_embeddings().num_embeddings >= len(processor.tokenizer)  # resized for new tokens
    assert model.config.vision_config.image_size == 48 and len(model.vision_tower.encoder.layers) == 2
    # pretrained weights are kept, not re-initialised
    assert torch.equal(
        model.vision_tower.encoder.layers[0].mlp.fc1.weight, vision.encoder.layers[0].mlp.fc1.weight
    )
    cls_position = vision.embeddings.position_embedding.weight[0]
    assert torch.equal(model.vision_tower.embeddings.position_embedding.weight[0], cls_position)
    n_old = lm.get_input_embeddings().num_embeddings
    assert torch.equal(model.get_input_embeddings().weight[:n_old], lm.get_input_embeddings().weight)
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight  # still tied
    messages = [
        {"role": "user", "content": "<image>colour?"},
        {"role": "assistant", "content": "a red square"},
    ]
    batch = processor(conversations=[messages], images=[[make_image(100, 40)]])
    with torch.no_grad():
        loss = model(**batch).loss
    assert torch.isfinite(loss)
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    loaded = AutoModelForImageTextToText.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, MM15ForConditionalGeneration)
    with torch.no_grad():
        assert torch.equal(loaded(**batch).loss, loss)


def test_moe_on_a_pretrained_lm_starts_as_the_dense_lm(local_backbones):
    root, _, _ = local_backbones
    processor = build_processor(small_1b(root))
    torch.manual_seed(0)  # the rows added for MM1.5's tokens are drawn at random: draw them alike
    dense = build_model(small_1b(root), processor).eval()
    torch.manual_seed(0)
    moe = build_model(small_1b(root, moe_num_experts=4), processor).eval()
    assert isinstance(moe.language_model.model.layers[1].mlp, MoEFeedForward)
    batch = processor(
        conversations=[[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "a"}]]
    )
    with torch.no_grad():
        expected = dense(**batch, return_logits=True).logits
        assert torch.allclose(moe(**batch, return_logits=True).logits, expected, atol=1e-5)  # upcycled
