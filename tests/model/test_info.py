import json

import pytest

from mm15.model.info import count_parameters, describe, format_description


def test_tiny_counts_match_the_built_model(tiny_model):
    d = describe("tiny")
    params = d["parameters"]
    assert params["total"] == count_parameters(tiny_model)
    assert params["vision_tower"] + params["connector"] + params["language_model"] == params["total"]
    assert params["connector"] == count_parameters(tiny_model.connector)
    json.dumps(d)  # plain data for --json


@pytest.mark.parametrize(
    ("preset", "lm_parameters", "vision_layers"),
    [
        ("1b", 1_543_714_304, "23 of 24"),
        ("3b", 3_085_938_688, "26 of 27"),
    ],  # Qwen2.5-1.5B / -3B: 1.54B / 3.09B
)
def test_large_presets_are_counted_on_the_meta_device(preset, lm_parameters, vision_layers):
    d = describe(preset)
    assert d["parameters"]["language_model"] == lm_parameters
    assert d["vision"]["layers"].startswith(vision_layers)
    assert d["vision"]["tile"] == 672 and d["vision"]["patches_per_tile"] == 48 * 48
    assert d["splitting"]["max_image_tokens"] == 10 * 144
    assert 250e6 < d["parameters"]["vision_tower"] < 450e6


def test_moe_preset_reports_active_parameters():
    params = describe("tiny-moe")["parameters"]
    assert params["language_model_active"] < params["language_model"]


def test_format_description_is_a_readable_table():
    text = format_description(describe("tiny"))
    for word in ("vision", "connector", "language model", "splitting", "parameters", "total", "C-Abstractor"):
        assert word in text
    total = describe("tiny")["parameters"]["total"]
    assert f"{total:,}" in text
