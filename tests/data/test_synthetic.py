"""Tests for mm15.data.synthetic: determinism, well-formed samples, and answers checked against the images."""

from __future__ import annotations

import contextlib
import io
import json
import re
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mm15.data.record import CATEGORIES, IMAGE_TOKEN, Sample, sha256_hex
from mm15.data.synthetic import SYNTHETIC_SOURCES, generate
from mm15.data.synthetic.drawing import COLOURS
from mm15.data.synthetic.general import COUNT_QUESTIONS
from mm15.data.synthetic.text_only import FACTS, split_of

SEED = 11
N_TRAIN, N_EVAL = 45, 20
SOURCES = sorted(SYNTHETIC_SOURCES)


@cache
def samples(source: str, split: str = "train") -> tuple[Sample, ...]:
    return tuple(generate(source, split, 0, N_TRAIN if split == "train" else N_EVAL, SEED))


def decode(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    return image.convert("RGB")


def nearest_colour(rgb) -> str:
    return min(COLOURS, key=lambda name: sum((a - b) ** 2 for a, b in zip(COLOURS[name], rgb, strict=True)))


def count_regions(image: Image.Image) -> int:
    """Connected regions of one flat colour other than the background (the most common colour)."""
    image = image.copy()
    background = max(image.getcolors(1 << 16))[1]
    regions = 0
    while True:
        pixels = np.asarray(image)
        foreground = np.argwhere(np.any(pixels != background, axis=2))
        if not len(foreground):
            return regions
        y, x = foreground[0]
        ImageDraw.floodfill(image, (int(x), int(y)), background, thresh=0)
        regions += 1


def to_thousandths(value: float, extent: int) -> float:
    return value * 1000 / extent


def ints_in(text: str) -> list[int]:
    return [int(v) for v in re.findall(r"-?\d+", text)]


# --- API ----------------------------------------------------------------------------------------------


def test_sources_and_categories():
    assert set(SYNTHETIC_SOURCES) == {
        "pdfa",
        "idl",
        "renderedtext",
        "docstruct",
        "syn_caption",
        *(f"syn_{category}" for category in CATEGORIES if category not in ("ocr", "caption")),
    }
    assert set(SYNTHETIC_SOURCES.values()) == set(CATEGORIES)
    assert all(SYNTHETIC_SOURCES[f"syn_{c}"] == c for c in CATEGORIES if c != "ocr")


def test_unknown_source_split_or_range_raise():
    with pytest.raises(KeyError, match="unknown synthetic source"):
        generate("nope", "train", 0, 1, SEED)
    with pytest.raises(ValueError, match="unknown split"):
        generate("syn_general", "test", 0, 1, SEED)
    with pytest.raises(ValueError):
        generate("syn_general", "train", -1, 1, SEED)
    with pytest.raises(ValueError):
        generate("syn_general", "train", 0, 1, SEED, image_size=8)


@pytest.mark.parametrize("source", SOURCES)
def test_deterministic_and_shardable(source):
    whole = list(generate(source, "train", 0, 6, SEED))
    assert whole == list(generate(source, "train", 0, 6, SEED))
    assert list(generate(source, "train", 2, 3, SEED)) == whole[2:5]
    other_seed = list(generate(source, "train", 0, 6, SEED + 1))
    assert [s.messages for s in other_seed] != [s.messages for s in whole]


def test_shards_generated_in_threads_equal_one_sequential_run():
    def shard(start: int) -> list[Sample]:
        return list(generate("renderedtext", "train", start, 8, SEED))

    with ThreadPoolExecutor(max_workers=4) as pool:
        shards = list(pool.map(shard, range(0, 32, 8)))
    assert [s for part in shards for s in part] == list(generate("renderedtext", "train", 0, 32, SEED))


# --- every source ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
def test_samples_are_well_formed(source):
    for i, sample in enumerate(samples(source)):
        assert sample.key == f"train/{i:07d}"
        assert (sample.source, sample.split, sample.category) == (source, "train", SYNTHETIC_SOURCES[source])
        assert sample.task and sample.tier in (0, 1, 2)
        assert [m["role"] for m in sample.messages] == ["user", "assistant"]
        assert sample.messages[1]["content"] == sample.meta["answer"] != ""
        assert IMAGE_TOKEN not in sample.messages[1]["content"]
        assert sample.messages[0]["content"].count(IMAGE_TOKEN) == len(sample.images)
        json.dumps(sample.meta)
        images = [decode(png) for png in sample.images]
        for image in images:
            assert min(image.size) >= 64 and max(image.size) <= 4 * 128
        for box in sample.boxes:
            width, height = images[box.image].size
            assert 0 <= box.x1 < box.x2 <= width and 0 <= box.y1 < box.y2 <= height
    if source == "syn_text_only":
        assert all(not s.images for s in samples(source))
    else:
        assert all(s.images for s in samples(source))


@pytest.mark.parametrize("source", SOURCES)
def test_all_tiers_and_several_tasks_occur(source):
    assert {s.tier for s in samples(source)} == {0, 1, 2}
    assert len({s.task for s in samples(source)}) >= (
        1 if SYNTHETIC_SOURCES[source] in ("ocr", "caption") else 2
    )


@pytest.mark.parametrize("source", SOURCES)
def test_train_and_eval_never_share_content(source):
    train, held_out = samples(source, "train"), samples(source, "eval")
    assert [s.messages for s in train[:N_EVAL]] != [s.messages for s in held_out]
    assert all(s.key.startswith("eval/") and s.split == "eval" for s in held_out)
    train_images = {sha256_hex(png) for s in train for png in s.images}
    assert not train_images & {sha256_hex(png) for s in held_out for png in s.images}
    # the guarantee behind it: train images have even widths, eval images odd ones
    assert all(decode(png).width % 2 == 0 for s in train for png in s.images)
    assert all(decode(png).width % 2 == 1 for s in held_out for png in s.images)


# --- answers checked against the images or recomputed -----------------------------------------------------


def test_general_colour_and_count_answers_match_the_image():
    checked = 0
    for sample in samples("syn_general") + tuple(generate("syn_general", "train", N_TRAIN, 60, SEED)):
        image = decode(sample.images[0])
        if sample.task == "color" and sample.tier == 0:
            # of the two colours in the image, the shape's is the saturated one (backgrounds are pale)
            shape_colour = max((rgb for _, rgb in image.getcolors(1 << 16)), key=lambda c: max(c) - min(c))
            assert nearest_colour(shape_colour) == sample.meta["answer"]
            checked += 1
        if sample.task == "count" and any(q in sample.messages[0]["content"] for q in COUNT_QUESTIONS):
            assert count_regions(image) == int(sample.meta["answer"])
            checked += 1
    assert checked >= 15


@pytest.mark.slow  # renders many scenes: over a second
def test_multi_image_counts_match_the_images():
    checked = 0
    for sample in samples("syn_multi_image"):
        counts = [count_regions(decode(png)) for png in sample.images]
        if sample.task == "more_shapes":
            assert int(sample.meta["answer"]) == counts.index(max(counts)) + 1
            checked += 1
        elif sample.task == "total_count":
            assert int(sample.meta["answer"]) == sum(counts)
            checked += 1
    assert checked >= 5


def test_refer_ground_coordinates_match_boxes_and_image():
    tasks = set()
    for sample in samples("syn_refer_ground"):
        tasks.add(sample.task)
        image = decode(sample.images[0])
        width, height = image.size
        (box,) = sample.boxes
        pixel_box = [to_thousandths(box.x1, width), to_thousandths(box.y1, height)]
        pixel_box += [to_thousandths(box.x2, width), to_thousandths(box.y2, height)]
        centre_colour = nearest_colour(
            image.getpixel((int((box.x1 + box.x2) / 2), int((box.y1 + box.y2) / 2)))
        )
        prompt = sample.messages[0]["content"]
        if sample.task == "ground":
            coords = ints_in(sample.meta["answer"])
            assert coords == sample.meta["answer_box"] and len(coords) == 4
            assert all(isinstance(v, int) and 0 <= v < 1000 for v in coords)
            assert all(abs(a - b) <= 1 for a, b in zip(coords, pixel_box, strict=True))
            assert centre_colour == re.search(r"the (\w+) (?:circle|square|triangle)", prompt).group(1)
        else:
            region = sample.meta["region"]
            assert region == ints_in(prompt) and all(0 <= v < 1000 for v in region)
            expected = (
                pixel_box
                if len(region) == 4
                else [(pixel_box[0] + pixel_box[2]) / 2, (pixel_box[1] + pixel_box[3]) / 2]
            )
            assert all(abs(a - b) <= 1 for a, b in zip(region, expected, strict=True))
            if "colour" in prompt:
                assert centre_colour == sample.meta["answer"]
            else:
                assert sample.meta["answer"] in ("circle", "square", "triangle")
    assert tasks == {"ground", "refer"}


def test_math_answers_are_correct():
    tasks = set()
    for sample in samples("syn_math"):
        answer, meta = int(sample.meta["answer"]), sample.meta
        tasks.add(sample.task)
        if sample.task == "arithmetic":
            assert re.fullmatch(r"[\d\s()+\-*]+", meta["expression"])
            assert answer == eval(meta["expression"], {"__builtins__": {}})  # digits and operators only
        elif sample.task == "geometry":
            a, b = meta["sides"]
            assert answer == (a * b if "area" in sample.messages[0]["content"] else 2 * (a + b))
        elif sample.task == "count_add":
            assert answer == sum(meta["counts"])
        elif sample.task == "plot_value":
            assert answer == meta["ys"][meta["x"]] and f"x = {meta['x']}" in sample.messages[0]["content"]
    assert tasks == {"arithmetic", "geometry", "count_add", "plot_value"}


def test_code_outputs_are_what_python_prints():
    outputs = 0
    for sample in samples("syn_code"):
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(sample.meta["code"], {})  # our own generated snippets
        if sample.task == "code_output":
            assert printed.getvalue().strip() == sample.meta["answer"]
            outputs += 1
        else:
            assert sample.meta["answer"] == sample.meta["code"]
    assert outputs >= 5


def _recompute_text_only(prompt: str) -> str:
    numbers = ints_in(prompt)
    if prompt.startswith("Sort"):
        return ", ".join(map(str, sorted(numbers, reverse="descending" in prompt)))
    if quoted := re.search(r"'(.+)'", prompt):
        return quoted.group(1)[::-1]
    if "boxes" in prompt:
        return str(numbers[0] * numbers[1] - numbers[2])
    if "gives away" in prompt:
        return str(numbers[0] - numbers[1])
    for template, per_unit in FACTS:
        if re.fullmatch(re.escape(template).replace(r"\{n\}", r"\d+"), prompt):
            return str(numbers[0] * per_unit)
    return str(sum(numbers))  # additions and "gets more"


def test_text_only_answers_are_correct_and_splits_disjoint():
    for split in ("train", "eval"):
        for sample in samples("syn_text_only", split):
            prompt = sample.messages[0]["content"]
            assert _recompute_text_only(prompt) == sample.meta["answer"], prompt
            assert split_of(prompt) == split


def test_science_answers_are_letters_of_the_right_choice():
    for sample in samples("syn_science"):
        choices, letter = sample.meta["choices"], sample.meta["answer"]
        assert 2 <= len(choices) <= 4 and len(set(choices)) == len(choices)
        assert choices["ABCD".index(letter)] == sample.meta["answer_text"]
        for k, choice in enumerate(choices):
            assert f"\n{'ABCD'[k]}. {choice}\n" in sample.messages[0]["content"]


def test_text_rich_and_docstruct_answers():
    for sample in samples("syn_text_rich"):
        if sample.task in ("table_cell", "chart_value", "chart_sum", "read_number"):
            assert sample.meta["answer"].isdigit()
        if sample.task == "read_word":
            assert sample.meta["answer"].isalpha() and 3 <= len(sample.meta["answer"]) <= 5
    for sample in samples("docstruct"):
        rows = sample.meta["answer"].split("\n")
        assert all(row.startswith("| ") and row.endswith(" |") for row in rows)
        assert len({row.count("|") for row in rows}) == 1 and set(rows[1].replace("|", "").split()) == {"---"}


@pytest.mark.parametrize("source", ["pdfa", "idl"])
def test_page_transcripts_follow_line_boxes(source):
    two_columns = 0
    for sample in samples(source):
        lines, boxes = sample.meta["lines"], sample.boxes
        assert len(boxes) == len(lines) >= 2
        assert [line for line in sample.meta["answer"].split("\n") if line] == lines
        if source == "pdfa":  # reading order: down a column, then up to the top of the next one
            width = decode(sample.images[0]).width
            for above, below in zip(boxes, boxes[1:], strict=False):
                next_column = below.x1 > above.x1 + 0.25 * width and below.y1 < above.y1
                two_columns += next_column
                assert below.y1 > above.y1 or next_column
    assert source == "idl" or two_columns >= 1


def test_renderedtext_answer_is_its_lines():
    for sample in samples("renderedtext"):
        assert " ".join(sample.meta["lines"]) == sample.meta["answer"]
        assert len(sample.boxes) == len(sample.meta["lines"])
