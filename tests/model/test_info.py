import json

import pytest

from mm15.model.info import count_parameters, describe, format_description
from mm15.model.presets import get_preset


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


def parse_table(text: str) -> tuple[str, dict[str, dict[str, str]], dict[str, tuple[int, str, str | None]]]:
    """format_description's text as (title, {section: {key: value}}, {component: (count, short, share)})."""
    title, blank, *rest = text.split("\n")
    assert blank == ""
    sections: dict[str, dict[str, str]] = {}
    rows: dict[str, str] = {}
    for line in rest[: rest.index("")]:
        if line.startswith("  "):
            key, value = line.strip().split(maxsplit=1)
            rows[key] = value
        else:  # a section's name, then its rows
            rows = sections[line] = {}
    assert rest[rest.index("") + 1] == "parameters"
    parameters = {}
    for line in rest[rest.index("") + 2 :]:
        name, count, short, *share = line.split()
        parameters[name] = (int(count.replace(",", "")), short, share[0] if share else None)
    return title, sections, parameters


@pytest.mark.parametrize("preset", ["tiny", "tiny-moe"])
def test_format_description_shows_every_value_of_describe(preset):
    d = describe(preset)
    title, sections, parameters = parse_table(format_description(d))
    assert title == f"preset {preset}: {d['description']}"
    assert sections == {
        name.replace("_", " "): {key: str(value) for key, value in d[name].items()}
        for name in ("vision", "connector", "language_model", "splitting")
    }
    counts = d["parameters"]
    assert {name: count for name, (count, _, _) in parameters.items()} == counts  # every row, exact
    total = counts["total"]
    for name in ("vision_tower", "connector", "language_model"):
        assert parameters[name][2] == f"{100 * counts[name] / total:.1f}%", name
    assert sum(float(parameters[n][2][:-1]) for n in ("vision_tower", "connector", "language_model")) == (
        pytest.approx(100, abs=0.15)
    )
    assert parameters["total"][2] is None  # shares are of the total, which has none
    if preset == "tiny-moe":
        assert parameters["language_model_active"][2] is None
        assert sections["language model"]["moe"] == "4 experts, top-2, every 2 layers"
    else:
        assert "language_model_active" not in parameters and sections["language model"]["moe"] == "off"


@pytest.mark.parametrize(
    ("preset", "grids", "max_image_tokens"), [("tiny", "(1, 4)", 80), ("1b", "(4, 9)", 1440)]
)
def test_splitting_rows_show_the_presets_grid_range_and_token_budget(preset, grids, max_image_tokens):
    p = get_preset(preset)
    _, sections, _ = parse_table(format_description(describe(preset)))
    splitting = sections["splitting"]
    assert splitting["grids"] == grids == f"({p.n_min}, {p.n_max})"
    # the largest grid has n_max tiles, plus the overview, each tokens_per_tile tokens
    assert int(splitting["max_image_tokens"]) == max_image_tokens == (p.n_max + 1) * p.tokens_per_tile
    assert (splitting["mode"], splitting["tile_indicators"]) == ("dynamic", p.tile_indicators)
    assert int(sections["connector"]["tokens_per_tile"]) == p.tokens_per_tile
    assert int(sections["vision"]["tile"]) == p.tile


def test_tiny_table_shows_the_presets_architecture():
    _, sections, _ = parse_table(format_description(describe("tiny")))
    # "ViT 96x2 (patch 16, 112 px tiles), C-Abstractor to 16 tokens, Llama 128x2"
    vision, connector, lm = sections["vision"], sections["connector"], sections["language model"]
    assert (vision["hidden_size"], vision["layers"], vision["patch_size"]) == (
        "96",
        "2 of 2 (feature layer -1)",
        "16",
    )
    assert vision["patches_per_tile"] == str((112 // 16) ** 2) == "49"
    assert (connector["type"], connector["tokens_per_tile"]) == ("C-Abstractor", "16")
    assert (lm["model_type"], lm["hidden_size"], lm["layers"], lm["heads"]) == (
        "llama",
        "128",
        "2",
        "4 (kv 4)",
    )


def test_format_description_renders_counts_short_forms_and_shares():
    d = {
        "preset": "p",
        "description": "a handmade description",
        "vision": {"layers": "23 of 24 (feature layer -2)"},
        "connector": {"type": "C-Abstractor"},
        "language_model": {"moe": "off"},
        "splitting": {"grids": "(4, 9)", "max_image_tokens": 1440},
        "parameters": {
            "vision_tower": 400_000_000,
            "connector": 99_950_000,
            "language_model": 1_500_050_000,
            "total": 2_000_000_000,
            "language_model_active": 999,
        },
    }
    assert format_description(d).split("\n") == [
        "preset p: a handmade description",
        "",
        "vision",
        "  layers               23 of 24 (feature layer -2)",
        "connector",
        "  type                 C-Abstractor",
        "language model",
        "  moe                  off",
        "splitting",
        "  grids                (4, 9)",
        "  max_image_tokens     1440",
        "",
        "parameters",
        "  vision_tower               400,000,000   400.00M   20.0%",
        "  connector                   99,950,000    99.95M    5.0%",
        "  language_model           1,500,050,000     1.50B   75.0%",
        "  total                    2,000,000,000     2.00B",
        "  language_model_active              999       999",
    ]
