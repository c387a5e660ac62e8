import pytest
import torch
from safetensors.torch import load_file
from torch.nn import functional as F
from transformers import AutoConfig, AutoModelForImageTextToText

from mm15.model import MM15Config, MM15ForConditionalGeneration
from mm15.model.loss import IGNORE_INDEX, reduce_token_losses
from mm15.model.presets import build_model
from mm15.model.splitting import image_token_count
from mm15.model.tokenizer import SPECIAL

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220), "yellow": (230, 230, 20)}


def chat(n_images: int, answer: str = "A shape.") -> list[dict]:
    return [
        {"role": "user", "content": SPECIAL.image * n_images + "Describe."},
        {"role": "assistant", "content": answer},
    ]


@pytest.fixture(scope="module")
def mixed_batch(tiny_processor, make_image):
    """Samples with 0, 1, 2, 3 and 5 images of several sizes, right padded, with labels."""
    counts = [0, 1, 2, 3, 5]
    images = [[make_image(60 + 50 * k, 100 + 20 * n, "red") for k in range(n)] for n in counts]
    return tiny_processor(conversations=[chat(n) for n in counts], images=images)


def test_image_features_fill_exactly_the_placeholders_for_any_image_count(tiny_model, mixed_batch):
    q = tiny_model.config.tokens_per_tile
    grids = [tuple(g) for g in mixed_batch["image_grids"].tolist()]
    with torch.no_grad():
        features = tiny_model.get_image_features(mixed_batch["pixel_values"])
        out = tiny_model(**mixed_batch)
    n_placeholders = int((mixed_batch["input_ids"] == tiny_model.config.image_token_id).sum())
    assert features.shape == (
        mixed_batch["pixel_values"].shape[0],
        q,
        tiny_model.config.text_config.hidden_size,
    )
    assert n_placeholders == features.shape[0] * q == sum(image_token_count(g, q) for g in grids)
    assert torch.isfinite(out.loss)


def test_features_are_scattered_in_order(tiny_model):
    image_id = tiny_model.config.image_token_id
    input_ids = torch.tensor([[5, image_id, image_id, 6], [image_id, 7, 8, image_id]])
    embeds = torch.zeros(2, 4, 3)
    features = torch.arange(1.0, 13.0).reshape(2, 2, 3)  # 2 views x 2 tokens
    merged = tiny_model.merge_image_features(input_ids, embeds, features)
    rows = features.reshape(4, 3)
    assert torch.equal(merged[0, 1], rows[0]) and torch.equal(merged[0, 2], rows[1])
    assert torch.equal(merged[1, 0], rows[2]) and torch.equal(merged[1, 3], rows[3])
    assert merged[0, 0].abs().sum() == 0 and merged[1, 1].abs().sum() == 0


def test_count_mismatches_are_clear_errors(tiny_model, mixed_batch):
    batch = {k: v.clone() for k, v in mixed_batch.items()}
    row, col = (batch["input_ids"] == tiny_model.config.image_token_id).nonzero()[0]
    batch["input_ids"][row, col] = 50  # one placeholder too few
    with pytest.raises(ValueError, match="image_grids need .* image tokens"), torch.no_grad():
        tiny_model(**batch)
    batch.pop("image_grids")
    with pytest.raises(ValueError, match="image tokens and image features differ"), torch.no_grad():
        tiny_model(**batch)
    with pytest.raises(ValueError, match="views but pixel_values"), torch.no_grad():
        tiny_model(**{**mixed_batch, "pixel_values": mixed_batch["pixel_values"][:-1]})
    with pytest.raises(ValueError, match="no pixel_values"), torch.no_grad():
        tiny_model(input_ids=mixed_batch["input_ids"], attention_mask=mixed_batch["attention_mask"])


def test_loss_is_over_labelled_tokens_averaged_per_sample(tiny_model, mixed_batch):
    with torch.no_grad():
        out = tiny_model(**mixed_batch, return_logits=True)
        fast = tiny_model(**mixed_batch)
    logits, labels = out.logits[:, :-1], mixed_batch["labels"][:, 1:]
    per_token = F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=IGNORE_INDEX, reduction="none")
    mask = labels != IGNORE_INDEX
    per_sample = (per_token * mask).sum(1) / mask.sum(1)
    assert torch.allclose(out.loss, per_sample.mean(), atol=1e-5)
    assert fast.logits is None and torch.allclose(fast.loss, out.loss, atol=1e-5)  # labelled positions only
    token_mean = (per_token * mask).sum() / mask.sum()
    losses, rows = per_token[mask], mask.nonzero()[:, 0]
    assert torch.allclose(reduce_token_losses(losses, rows, 5, "token"), token_mean, atol=1e-6)
    assert torch.allclose(reduce_token_losses(losses, rows, 5, "sample"), per_sample.mean(), atol=1e-6)
    with pytest.raises(ValueError, match="loss_reduction"):
        MM15Config(loss_reduction="batch")


def test_every_parameter_learns_from_a_batch_with_images(tiny_processor, mixed_batch):
    # DDP's default rejects parameters without gradients (e.g. an unused final LayerNorm)
    torch.manual_seed(0)
    model = build_model("tiny", tiny_processor)
    model(**mixed_batch).loss.backward()
    assert [name for name, p in model.named_parameters() if p.grad is None] == []


def test_siglip_tower_and_qwen2_lm_work_as_parts(make_image):
    config = MM15Config(
        vision_config=dict(
            model_type="siglip_vision_model",
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            patch_size=8,
            image_size=32,
        ),
        text_config=dict(
            model_type="qwen2",
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            vocab_size=64,
        ),
        image_token_id=5,
        tokens_per_tile=4,
        vision_feature_layer=-1,
        connector_depth=1,
        connector_width=16,
    )
    model = MM15ForConditionalGeneration(config).eval()
    input_ids = torch.tensor([[1] + [5] * 8 + [7, 8]])  # two views (a 1x1 grid + overview) of 4 tokens
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    labels[0, -2:] = input_ids[0, -2:]
    out = model(
        input_ids=input_ids,
        pixel_values=torch.randn(2, 3, 32, 32),
        image_grids=torch.tensor([[1, 1]]),
        labels=labels,
    )
    assert torch.isfinite(out.loss)
    assert model.get_image_features(torch.randn(3, 3, 32, 32)).shape == (3, 4, 32)  # no CLS to drop


def test_save_and_load_round_trip_gives_identical_outputs(tmp_path, tiny_model, tiny_processor, mixed_batch):
    tiny_model.save_pretrained(tmp_path)
    tiny_processor.save_pretrained(tmp_path)
    assert AutoConfig.from_pretrained(tmp_path).model_type == "mm15"
    weights = load_file(tmp_path / "model.safetensors")
    assert any(k.startswith("connector.") for k in weights) and any(
        k.startswith("vision_tower.") for k in weights
    )
    loaded = AutoModelForImageTextToText.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, MM15ForConditionalGeneration)
    with torch.no_grad():
        a = tiny_model(**mixed_batch, return_logits=True)
        b = loaded(**mixed_batch, return_logits=True)
    assert torch.equal(a.logits, b.logits) and torch.equal(a.loss, b.loss)
    assert loaded.generation_config.eos_token_id == tiny_processor.tokenizer.convert_tokens_to_ids(
        SPECIAL.end
    )


def test_generate_with_mixed_image_counts_matches_one_by_one(tiny_model, tiny_processor, make_image):
    conversations = [chat(1)[:1], chat(0)[:1], chat(3)[:1]]
    images = [[make_image(150, 100, "red")], [], [make_image(50, 70, "blue")] * 3]
    batch = tiny_processor(conversations=conversations, images=images, add_generation_prompt=True)
    prompt_length = batch["input_ids"].shape[1]
    settings = dict(max_new_tokens=6, do_sample=False)
    generated = tiny_model.generate(**batch, **settings)[:, prompt_length:]
    assert generated.shape == (3, 6)
    for k, (conversation, sample_images) in enumerate(zip(conversations, images, strict=True)):
        single = tiny_processor(
            conversations=[conversation], images=[sample_images], add_generation_prompt=True
        )
        alone = tiny_model.generate(**single, **settings)[0, single["input_ids"].shape[1] :]
        no_cache = tiny_model.generate(**single, **settings, use_cache=False)[
            0, single["input_ids"].shape[1] :
        ]
        assert torch.equal(alone, no_cache), "KV cache changes the output"
        assert torch.equal(generated[k], alone), f"sample {k} differs in a batch"


def test_beam_search_repeats_each_samples_images_with_it(tiny_model, tiny_processor, make_image):
    conversations = [chat(2)[:1], chat(1)[:1]]
    images = [[make_image(150, 100, "red"), make_image(60, 90, "green")], [make_image(80, 80, "blue")]]
    batch = tiny_processor(conversations=conversations, images=images, add_generation_prompt=True)
    inputs = {k: v for k, v in batch.items() if k != "input_ids"}
    _, expanded = tiny_model._expand_inputs_for_generation(2, input_ids=batch["input_ids"], **inputs)
    views = [
        tiny_processor.encode_chat(c, i)["pixel_values"] for c, i in zip(conversations, images, strict=True)
    ]
    assert torch.equal(expanded["pixel_values"], torch.cat([views[0], views[0], views[1], views[1]]))
    grids = batch["image_grids"]
    assert torch.equal(expanded["image_grids"], torch.cat([grids[:2], grids[:2], grids[2:], grids[2:]]))
    settings = dict(
        max_new_tokens=3, do_sample=False, num_beams=2, output_scores=True, return_dict_in_generate=True
    )
    together = tiny_model.generate(**batch, **settings).scores[0]
    for k in range(2):
        single = tiny_processor(
            conversations=[conversations[k]], images=[images[k]], add_generation_prompt=True
        )
        alone = tiny_model.generate(**single, **settings).scores[0]
        assert torch.allclose(together[2 * k : 2 * k + 2], alone, atol=1e-4)


@pytest.mark.slow
def test_tiny_model_overfits_a_handful_of_samples(tiny_processor, make_image):
    torch.manual_seed(0)
    model = build_model("tiny", tiny_processor)
    samples = [
        tiny_processor.encode_chat(chat(1, f"It is {name}."), [make_image(100 + 10 * k, 90, rgb)])
        for k, (name, rgb) in enumerate(COLOURS.items())
    ]
    samples.append(tiny_processor.encode_chat(chat(0, "No image here."), []))
    samples.append(tiny_processor.encode_chat(chat(3, "Three."), [make_image(40, 40, "white")] * 3))
    batch = tiny_processor.pad(samples)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    for _ in range(300):
        loss = model(**batch).loss
        if loss.item() < 0.02:
            break
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert loss.item() < 0.05
    model.eval()
    prompt = tiny_processor(
        conversations=[chat(1)[:1]],
        images=[[make_image(100, 90, COLOURS["red"])]],
        add_generation_prompt=True,
    )
    answer = model.generate(**prompt, max_new_tokens=12, do_sample=False)[0, prompt["input_ids"].shape[1] :]
    assert tiny_processor.tokenizer.decode(answer, skip_special_tokens=True) == "It is red."
