import pytest
import torch
from transformers import AutoProcessor

import mm15.model  # noqa: F401  (registers the Auto classes)
from mm15.model.image_processing import MM15ImageProcessor
from mm15.model.loss import IGNORE_INDEX
from mm15.model.processing import MM15Processor
from mm15.model.splitting import UNSPLIT, image_token_count
from mm15.model.tokenizer import SPECIAL, build_byte_tokenizer

Q = 16


def conversation(n_images: int) -> list[dict]:
    return [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": SPECIAL.image * n_images + "What is shown?"},
        {"role": "assistant", "content": "Shapes."},
        {"role": "user", "content": "Which colour?"},
        {"role": "assistant", "content": "Red [1, 2, 3, 4]"},
    ]


def test_labels_cover_only_assistant_content_and_end_of_turn(tiny_processor, make_image):
    encoded = tiny_processor.encode_chat(conversation(1), [make_image(150, 130)])
    ids, labels = encoded["input_ids"], encoded["labels"]
    trained = labels != IGNORE_INDEX
    assert torch.equal(labels[trained], ids[trained])
    assert (
        tiny_processor.tokenizer.decode(ids[trained]) == f"Shapes.{SPECIAL.end}Red [1, 2, 3, 4]{SPECIAL.end}"
    )
    # every image, system, user and role token is masked
    assert not trained[ids == tiny_processor.image_token_id].any()


def test_image_tokens_in_an_assistant_turn_are_masked(tiny_processor, make_image):
    messages = [
        {"role": "user", "content": "Draw."},
        {"role": "assistant", "content": f"Here: {SPECIAL.image} done"},
    ]
    encoded = tiny_processor.encode_chat(messages, [make_image(40, 40)])
    ids, labels = encoded["input_ids"], encoded["labels"]
    assert tiny_processor.tokenizer.decode(ids[labels != IGNORE_INDEX]) == f"Here:  done{SPECIAL.end}"


@pytest.mark.parametrize("n_images", [0, 1, 2, 3, 5])
def test_placeholders_equal_the_token_count_of_each_image(tiny_processor, make_image, n_images):
    images = [make_image(100 + 60 * k, 120) for k in range(n_images)]
    encoded = tiny_processor.encode_chat(conversation(n_images), images)
    grids = encoded["image_grids"]
    n_placeholders = int((encoded["input_ids"] == tiny_processor.image_token_id).sum())
    assert n_placeholders == sum(image_token_count(g, Q) for g in grids)
    assert n_placeholders == encoded["pixel_values"].shape[0] * Q
    if n_images >= 3:
        assert grids == [UNSPLIT] * n_images
    elif n_images:
        assert all(g != UNSPLIT for g in grids)


def processor_with(indicators: str, overview: str = "after") -> MM15Processor:
    image_processor = MM15ImageProcessor(tile_size=32, n_min=4, n_max=9, overview=overview)
    return MM15Processor(
        image_processor, build_byte_tokenizer(), tokens_per_tile=4, tile_indicators=indicators
    )


def test_index_indicators_name_image_row_and_column(make_image):
    processor = processor_with("index")
    span = processor.image_span(2, (2, 3))
    text = processor.tokenizer.decode(span).replace(SPECIAL.image * 4, "|")
    expected = (
        "".join(f"{SPECIAL.tile}2,{i},{j}|" for i in (1, 2) for j in (1, 2, 3)) + f"{SPECIAL.tile}2,0,0|"
    )
    assert text == expected
    assert processor.tokenizer.decode(processor.image_span(1, UNSPLIT)).startswith(f"{SPECIAL.tile}1,0,0")


def test_seps_and_none_indicators():
    seps = processor_with("seps")
    text = seps.tokenizer.decode(seps.image_span(1, (2, 3))).replace(SPECIAL.image * 4, "|")
    row = f"|{SPECIAL.tile_sep}|{SPECIAL.tile_sep}|{SPECIAL.row_sep}"
    assert text == row + row + "|"
    none = processor_with("none")
    assert none.image_span(1, (2, 3)) == [none.image_token_id] * 4 * 7
    with pytest.raises(ValueError, match="tile_indicators"):
        processor_with("arrows")


def test_overview_before_puts_the_overviews_span_first():
    index = processor_with("index", overview="before")
    text = index.tokenizer.decode(index.image_span(2, (2, 3))).replace(SPECIAL.image * 4, "|")
    tiles = "".join(f"{SPECIAL.tile}2,{i},{j}|" for i in (1, 2) for j in (1, 2, 3))
    assert text == f"{SPECIAL.tile}2,0,0|" + tiles
    seps = processor_with("seps", overview="before")
    text = seps.tokenizer.decode(seps.image_span(1, (2, 3))).replace(SPECIAL.image * 4, "|")
    row = f"|{SPECIAL.tile_sep}|{SPECIAL.tile_sep}|{SPECIAL.row_sep}"
    assert text == "|" + row + row
    for indicators in ("index", "seps", "none"):
        after, before = processor_with(indicators), processor_with(indicators, overview="before")
        assert before.image_span(1, UNSPLIT) == after.image_span(1, UNSPLIT)  # one view: nothing moves
        assert sorted(before.image_span(1, (2, 2))) == sorted(after.image_span(1, (2, 2)))
    assert processor_with("none", "before").image_span(1, (2, 3)) == processor_with("none").image_span(
        1, (2, 3)
    )


@pytest.mark.parametrize("indicators", ["index", "seps", "none"])
def test_overview_before_encodes_spans_and_views_in_the_same_order(make_image, indicators):
    after, before = processor_with(indicators), processor_with(indicators, overview="before")
    images = [make_image(100, 60, "red"), make_image(40, 90, "blue")]  # two split images
    a, b = (p.encode_chat(conversation(2), images) for p in (after, before))
    assert a["image_grids"] == b["image_grids"] and all(g != UNSPLIT for g in b["image_grids"])
    n_placeholders = int((b["input_ids"] == before.image_token_id).sum())
    assert (
        n_placeholders
        == b["pixel_values"].shape[0] * 4
        == sum(image_token_count(g, 4) for g in b["image_grids"])
    )
    counts = [g[0] * g[1] + 1 for g in a["image_grids"]]
    rolled = torch.cat([views.roll(1, dims=0) for views in a["pixel_values"].split(counts)])
    assert torch.equal(b["pixel_values"], rolled)  # each image's overview first, then its tiles
    assert (b["input_ids"] == a["input_ids"]).all() == (indicators == "none")
    if indicators == "index":  # the first indicator of each image names its overview
        text = before.tokenizer.decode(b["input_ids"])
        assert text.index(f"{SPECIAL.tile}1,0,0") < text.index(f"{SPECIAL.tile}1,1,1")
        assert text.index(f"{SPECIAL.tile}2,0,0") < text.index(f"{SPECIAL.tile}2,1,1")


def test_render_chat_matches_the_jinja_chat_template(tiny_processor):
    messages = conversation(2)
    rendered = tiny_processor.render_chat(messages, add_generation_prompt=True)
    assert rendered == tiny_processor.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True
    )
    parts = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Red."}]},
    ]
    assert tiny_processor.apply_chat_template(parts, tokenize=False) == (
        f"{SPECIAL.bos}{SPECIAL.user}{SPECIAL.image}What?{SPECIAL.end}{SPECIAL.assistant}Red.{SPECIAL.end}"
    )
    assert tiny_processor.render_chat(parts) == tiny_processor.apply_chat_template(parts, tokenize=False)


def test_prompt_text_and_conversation_encode_to_the_same_ids(tiny_processor, make_image):
    images = [make_image(150, 130), make_image(60, 200)]
    messages = conversation(2)[:2]
    from_chat = tiny_processor.encode_chat(messages, images, add_generation_prompt=True)
    prompt = tiny_processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    from_text = tiny_processor.encode_text(prompt, images)
    assert torch.equal(from_chat["input_ids"], from_text["input_ids"])
    assert torch.equal(from_chat["pixel_values"], from_text["pixel_values"])


def test_image_count_mismatch_is_an_error(tiny_processor, make_image):
    with pytest.raises(ValueError, match="2 <image> markers but 1 images"):
        tiny_processor.encode_chat(conversation(2), [make_image(30, 30)])
    with pytest.raises(ValueError, match="unknown role"):
        tiny_processor.encode_chat([{"role": "robot", "content": "hi"}])


def test_truncation_never_cuts_an_image_span(tiny_processor, make_image):
    encoded = tiny_processor.encode_chat(conversation(1), [make_image(150, 130)])
    n = len(encoded["input_ids"])
    last_image = int((encoded["input_ids"] == tiny_processor.image_token_id).nonzero().max())
    cut = tiny_processor.encode_chat(conversation(1), [make_image(150, 130)], max_length=n - 3)
    assert torch.equal(cut["input_ids"], encoded["input_ids"][: n - 3])
    with pytest.raises(ValueError, match="image span"):
        tiny_processor.encode_chat(conversation(1), [make_image(150, 130)], max_length=last_image)


def test_batch_padding_and_images_in_order(tiny_processor, make_image):
    images = [[make_image(150, 130, "red")], [], [make_image(40, 40, "blue")] * 3]
    batch = tiny_processor(conversations=[conversation(1), conversation(0), conversation(3)], images=images)
    lengths = batch["attention_mask"].sum(1)
    assert batch["input_ids"].shape[1] == lengths.max()
    row = int(lengths.argmin())
    assert (batch["input_ids"][row, lengths[row] :] == tiny_processor.tokenizer.pad_token_id).all()  # right
    assert (batch["labels"][row, lengths[row] :] == IGNORE_INDEX).all()
    assert batch["image_grids"].tolist()[1:] == [[0, 0]] * 3
    assert batch["pixel_values"].shape[0] == sum(
        g[0] * g[1] + 1 if g[0] else 1 for g in batch["image_grids"].tolist()
    )
    prompts = tiny_processor(
        conversations=[conversation(1)[:2], conversation(0)[:2]],
        images=images[:2],
        add_generation_prompt=True,
    )
    assert (prompts["attention_mask"][:, -1] == 1).all()  # left padding for generation
    assert (
        "labels" in prompts and (prompts["input_ids"][:, -1] == tiny_processor._role_ids["assistant"]).all()
    )


def test_prompt_strings_take_a_flat_image_list(tiny_processor, make_image):
    texts = [
        f"{SPECIAL.user}{SPECIAL.image}{SPECIAL.image}Compare.",
        f"{SPECIAL.user}Hi",
        f"{SPECIAL.image}x",
    ]
    images = [make_image(30, 30), make_image(40, 40), make_image(50, 50)]
    batch = tiny_processor(text=texts, images=images)
    assert batch["image_grids"].shape == (3, 2)
    assert (
        int((batch["input_ids"] == tiny_processor.image_token_id).sum()) == batch["pixel_values"].shape[0] * Q
    )
    assert "labels" not in batch
    with pytest.raises(ValueError, match="3 <image> markers but 2 images"):
        tiny_processor(text=texts, images=images[:2])


def test_processor_saves_and_loads_with_its_settings(tmp_path, make_image):
    processor = processor_with("seps")
    processor.save_pretrained(tmp_path)
    loaded = AutoProcessor.from_pretrained(tmp_path)
    assert isinstance(loaded, MM15Processor) and isinstance(loaded.image_processor, MM15ImageProcessor)
    assert (loaded.tile_indicators, loaded.tokens_per_tile) == ("seps", 4)
    assert loaded.image_processor.split_config == processor.image_processor.split_config
    args = ([conversation(1)], [[make_image(90, 50)]])
    a, b = processor(conversations=args[0], images=args[1]), loaded(conversations=args[0], images=args[1])
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_layout_set_after_construction_is_saved(tmp_path, make_image):
    """As a training stage sets them: tile indicators and the overview's position travel with the save."""
    processor = processor_with("index")
    processor.tile_indicators, processor.image_processor.overview = "none", "before"
    processor.save_pretrained(tmp_path)
    loaded = AutoProcessor.from_pretrained(tmp_path)
    assert (loaded.tile_indicators, loaded.image_processor.overview) == ("none", "before")
    args = ([conversation(1)], [[make_image(90, 50)]])
    a, b = processor(conversations=args[0], images=args[1]), loaded(conversations=args[0], images=args[1])
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_grounding_helpers_use_the_whole_image(tiny_processor, make_image):
    image = make_image(400, 200)
    assert tiny_processor.box_to_text((100, 50, 300, 150), image) == "[250, 250, 750, 750]"
    assert tiny_processor.point_to_text(200, 100, (400, 200)) == "[500, 500]"
    (box,) = tiny_processor.text_to_boxes("at [250, 250, 750, 750]", image)
    assert box == pytest.approx((100.2, 50.1, 300.2, 150.1))
