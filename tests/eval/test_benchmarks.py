"""Benchmarks: the YAML definitions, their samples from a real catalog, and the file adapters."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from mm15.catalog import open_catalog
from mm15.config import ConfigError
from mm15.eval.benchmarks import benchmarks_dir, known_benchmarks, load_benchmark, load_benchmarks
from mm15.eval.datasets import load_samples, shot_indices
from mm15.eval.metrics import METRICS, score
from tests.images import png

BUILTIN = {  # name -> (category, metric)
    "general": ("general", "vqa_accuracy"),
    "text_rich": ("text_rich", "anls"),
    "science": ("knowledge", "multiple_choice"),
    "math": ("knowledge", "relaxed_accuracy"),
    "code": ("knowledge", "anls"),
    "refer_ground": ("refer_ground", "grounding"),
    "multi_image": ("multi_image", "vqa_accuracy"),
    "in_context": ("in_context", "vqa_accuracy"),
    "ocr": ("ocr", "anls"),
    "caption": (None, "anls"),
    "text_only": (None, "vqa_accuracy"),
}


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def size_of(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


# ---------------------------------------------------------------------------------------------------------
# Definitions
# ---------------------------------------------------------------------------------------------------------


def test_every_builtin_benchmark_loads():
    assert known_benchmarks() == sorted(BUILTIN)
    configs = load_benchmarks()
    assert [c.name for c in configs] == sorted(BUILTIN)
    for config in configs:
        assert (config.category, config.metric) == BUILTIN[config.name], config.name
        assert config.metric in METRICS and config.source.catalog is not None
        assert config.source.catalog.split == "eval"
    assert load_benchmark("in_context").shots == 2
    assert load_benchmark("ocr").source.catalog.sources == ["pdfa", "idl", "renderedtext", "docstruct"]
    assert load_benchmark(benchmarks_dir() / "general.yaml") == load_benchmark("general")


def test_unknown_benchmark_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"no benchmark 'nope' .*known: caption, code, general"):
        load_benchmark("nope")
    with pytest.raises(ConfigError, match="bad benchmark name"):
        load_benchmark("..hidden")


CATALOG = "category: general\nmetric: anls\nsource: {catalog: {categories: [general]}}\n"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (CATALOG + "colour: red\n", "colour: unknown field"),
        (CATALOG.replace("anls", "bleu"), "metric: unknown metric 'bleu'"),
        (CATALOG + "max_new_tokens: 0\n", "max_new_tokens: input should be greater than or equal to 1"),
        (CATALOG + "shots: -1\n", "shots: input should be greater than or equal to 0"),
        (CATALOG.replace("category: general", "category: sports"), "category: input should be"),
        (CATALOG.replace("category: general\n", ""), "category: missing field"),
        (CATALOG + "parser: regex\n", "parser: input should be"),
        (CATALOG + "prompt: '{question}'\n", "prompt: only used with a `file` source"),
        (CATALOG.replace("[general]", "[sports]"), "source.catalog.categories: unknown category 'sports'"),
        (
            CATALOG.replace("}}", "}, file: {path: a.jsonl, format: vqa}}"),
            "source: give exactly one of `catalog` or `file`",
        ),
        (CATALOG.replace("{catalog: {categories: [general]}}", "{}"), "source: give exactly one"),
        (
            CATALOG.replace("{catalog: {categories: [general]}}", "{file: {path: a.csv, format: vqa}}"),
            "source.file.path: expected a .parquet or .jsonl file",
        ),
        (
            CATALOG.replace("{catalog: {categories: [general]}}", "{file: {path: a.jsonl, format: coco}}"),
            "source.file.format: input should be",
        ),
        (
            CATALOG.replace("{catalog: {categories: [general]}}", "{file: {path: a.jsonl, format: refcoco}}"),
            "metric: 'anls' does not fit file format refcoco",
        ),
        (
            CATALOG.replace("{catalog: {categories: [general]}}", "{file: {path: a.jsonl, format: vqa}}")
            + "prompt: '{question} {options}'\n",
            "prompt: unknown placeholder {options}",
        ),
        ("- a list\n", "a benchmark is a mapping"),
        (CATALOG + "metric: vqa_accuracy\n", "duplicate key 'metric'"),
    ],
)
def test_a_bad_benchmark_is_one_line_naming_file_and_field(tmp_path, text, field):
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(ConfigError) as error:
        load_benchmark(path)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert field in message


def test_a_file_path_is_relative_to_the_yaml_and_names_default_to_the_stem(tmp_path):
    (tmp_path / "sub").mkdir()
    path = write(
        tmp_path / "sub",
        "mine.yaml",
        "category: null\nmetric: anls\nsource: {file: {path: d.jsonl, format: vqa}}\n",
    )
    config = load_benchmark(str(path))
    assert config.name == "mine" and config.category is None
    assert config.source.file.path == (tmp_path / "sub" / "d.jsonl").resolve()
    assert config.prompt_template == "{question}"
    with pytest.raises(ConfigError, match="two benchmarks are named 'general'"):
        load_benchmarks(["general", str(write(tmp_path, "g.yaml", "name: general\n" + CATALOG))])


def test_shot_indices_take_the_same_task_first_wrapping_around():
    groups = ["a", "b", "a", "a", "b"]
    assert shot_indices(groups, 0, 2) == [2, 3]
    assert shot_indices(groups, 3, 2) == [0, 2]  # wraps around
    assert shot_indices(groups, 1, 2) == [4, 2]  # one other "b", then the next of other tasks
    assert shot_indices(groups, 0, 9) == [2, 3, 1, 4]  # never itself
    assert shot_indices(["a"], 0, 2) == []


# ---------------------------------------------------------------------------------------------------------
# Catalog sources
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalog_dir(train_home) -> Path:
    return train_home / "catalog"


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_builtin_benchmark_samples_from_the_catalog(catalog_dir, name):
    benchmark = load_benchmark(name)
    samples, malformed = load_samples(benchmark, catalog_dir)
    assert samples and malformed == []
    for sample in samples:
        assert sample.benchmark == name
        assert sample.messages[-1]["role"] == "user"
        assert all(set(m) == {"role", "content"} for m in sample.messages)
        markers = sum(m["content"].count("<image>") for m in sample.messages)
        assert markers == len(sample.images)
        assert all(min(size_of(image)) > 0 for image in sample.images)
        refs = sample.references
        assert refs["answers"] and all(isinstance(a, str) and a for a in refs["answers"])
        assert score(benchmark.metric, refs["answers"][0], refs) == 1.0, (name, refs)
        # the budget holds the gold answer even with the byte-level tokenizer (a token per byte)
        assert len(refs["answers"][0].encode()) < benchmark.max_new_tokens, name
    if name != "text_only":
        assert all(sample.images for sample in samples)
    again, _ = load_samples(benchmark, catalog_dir)
    assert [s.sample_id for s in again] == [s.sample_id for s in samples]  # deterministic
    first, _ = load_samples(benchmark, catalog_dir, limit=3)
    assert [s.sample_id for s in first] == [s.sample_id for s in samples[:3]]
    assert [s.messages for s in first] == [s.messages for s in samples[:3]]
    assert load_samples(benchmark, catalog_dir, limit=0)[0] == []


def test_catalog_samples_are_in_hash_order_with_their_references(catalog_dir):
    samples, _ = load_samples(load_benchmark("science"), catalog_dir)
    with open_catalog(catalog_dir) as catalog:
        rows = catalog.con.execute(
            "SELECT sample_id, messages, meta FROM samples WHERE split = 'eval' AND category = 'science' "
            "ORDER BY hash64, sample_id"
        ).fetchall()
    assert [s.sample_id for s in samples] == [r[0] for r in rows]
    for sample, (_, messages, meta) in zip(samples, rows, strict=True):
        meta = json.loads(meta)
        assert sample.messages == [dict(m) for m in messages[:-1]]
        assert sample.references == {
            "answers": [meta["answer"]],
            "options": meta["choices"],
            "answer": meta["answer"],
        }
    boxes, _ = load_samples(load_benchmark("refer_ground"), catalog_dir)
    assert all(len(s.references["box"]) == 4 and "width" not in s.references for s in boxes)


def test_catalog_rows_without_the_metrics_references_are_reported(catalog_dir, tmp_path):
    """refer samples answer with a word: under the grounding metric they are malformed, not dropped."""
    text = "category: refer_ground\nmetric: grounding\nsource: {catalog: {categories: [refer_ground]}}\n"
    samples, malformed = load_samples(load_benchmark(write(tmp_path, "rg.yaml", text)), catalog_dir)
    grounded, _ = load_samples(load_benchmark("refer_ground"), catalog_dir)
    assert malformed and len(samples) + len(malformed) == 8
    assert [s.sample_id for s in samples] == [s.sample_id for s in grounded]
    assert all("answer_box" in m["reason"] and m["sample_id"] for m in malformed)


def test_in_context_prompts_hold_two_shots_with_their_images_first(catalog_dir):
    plain, _ = load_samples(load_benchmark("general"), catalog_dir)
    shots, _ = load_samples(load_benchmark("in_context"), catalog_dir)
    with open_catalog(catalog_dir) as catalog:
        tasks = dict(
            catalog.con.execute(
                "SELECT sample_id, task FROM samples WHERE split = 'eval' AND category = 'general'"
            ).fetchall()
        )
    assert [s.sample_id for s in shots] == [s.sample_id for s in plain]
    groups = [tasks[s.sample_id] for s in plain]
    for k, (sample, query) in enumerate(zip(shots, plain, strict=True)):
        expected = [plain[i] for i in shot_indices(groups, k, 2)]
        assert [groups[i] for i in shot_indices(groups, k, 2)][0] == groups[k] or groups.count(groups[k]) == 1
        assert [m["role"] for m in sample.messages] == ["user", "assistant"] * 2 + ["user"]
        assert sample.messages[0::2] == [e.messages[-1] for e in expected] + [query.messages[-1]]
        assert [m["content"] for m in sample.messages[1::2]] == [e.references["answers"][0] for e in expected]
        assert sample.images == expected[0].images + expected[1].images + query.images
        assert sample.references == query.references
    limited, _ = load_samples(load_benchmark("in_context"), catalog_dir, limit=2)
    assert [s.messages for s in limited] == [s.messages for s in shots[:2]]  # shots drawn from them all


# ---------------------------------------------------------------------------------------------------------
# File sources
# ---------------------------------------------------------------------------------------------------------


def file_benchmark(folder: Path, data: str, fmt: str, metric: str, extra: str = "") -> Path:
    text = f"category: general\nmetric: {metric}\nsource: {{file: {{path: {data}, format: {fmt}}}}}\n"
    return write(folder, f"{fmt}.yaml", text + extra)


@pytest.fixture
def bench(tmp_path) -> Path:
    """A benchmark folder with images a.png (40x30) and b.png, a file that is not an image, and an
    image outside the folder."""
    folder = tmp_path / "bench"
    (folder / "img").mkdir(parents=True)
    (folder / "img" / "a.png").write_bytes(png(1, (40, 30)))
    (folder / "img" / "b.png").write_bytes(png(2))
    (folder / "img" / "broken.png").write_bytes(b"\x89PNG not really")
    (tmp_path / "outside.png").write_bytes(png(3))
    (folder / "img" / "link.png").symlink_to(tmp_path / "outside.png")
    return folder


def jsonl(path: Path, rows: list) -> None:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")


def test_vqa_jsonl_keeps_good_rows_and_reports_malformed_ones(bench):
    jsonl(
        bench / "vqa.jsonl",
        [
            {"question": "What colour?", "answers": ["red"] * 4 + ["dark red"], "image": "img/a.png"},
            {"question": "Is it round?", "answers": "yes", "image": {"path": "img/b.png"}},
            {"question": "2 + 2?", "answers": ["4"]},  # text only
            {"answers": ["x"], "image": "img/a.png"},
            {"question": "q", "answers": [], "image": "img/a.png"},
            {"question": "q", "answers": ["x"], "image": "../outside.png"},
            {"question": "q", "answers": ["x"], "image": str(bench.parent / "outside.png")},
            {"question": "q", "answers": ["x"], "image": "img/broken.png"},
            {"question": "q", "answers": ["x"], "image": "img/missing.png"},
            "{not json",
            "[1, 2]",
            {"question": "q <image>", "answers": ["x"]},
            {"question": "q", "answers": ["x"], "image": "img/link.png"},  # a link leading out
        ],
    )
    path = file_benchmark(bench, "vqa.jsonl", "vqa", "vqa_accuracy", "prompt: '{question} Answer briefly.'\n")
    samples, malformed = load_samples(load_benchmark(path))
    assert [s.sample_id for s in samples] == ["0", "1", "2"]
    first = samples[0]
    assert first.messages == [{"role": "user", "content": "<image>\nWhat colour? Answer briefly."}]
    assert first.images == [(bench / "img" / "a.png").read_bytes()]
    assert first.references == {"answers": ["red"] * 4 + ["dark red"]}
    assert samples[1].references == {"answers": ["yes"]} and len(samples[1].images) == 1
    assert samples[2].images == [] and "<image>" not in samples[2].messages[0]["content"]
    assert all(score("vqa_accuracy", s.references["answers"][0], s.references) == 1.0 for s in samples)
    reasons = {m["row"]: m["reason"] for m in malformed}
    assert sorted(reasons) == list(range(3, 13))
    assert "'question'" in reasons[3] and "'answers' is empty" in reasons[4]
    assert reasons[5].startswith("path_escape") and reasons[6].startswith("path_escape")
    assert reasons[7].startswith("bad_image") and reasons[8].startswith("missing_file")
    assert reasons[9].startswith("invalid_json") and "expected an object" in reasons[10]
    assert "1 <image> markers but 0 images" in reasons[11] and reasons[12].startswith("path_escape")
    assert [s.sample_id for s in load_samples(load_benchmark(path), limit=2)[0]] == ["0", "1"]


def test_vqa_parquet_reads_embedded_bytes_and_paths(bench):
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    table = pa.table(
        {
            "question": ["What is it?", "And this?", "Broken?", "Escape?", None],
            "answers": [["cat", "cat"], ["dog"], ["x"], ["x"], ["x"]],
            "image": pa.array(
                [
                    {"bytes": png(5), "path": "ignored.png"},
                    {"bytes": None, "path": "img/b.png"},
                    {"bytes": b"garbage", "path": None},
                    {"bytes": None, "path": "../../etc/passwd"},
                    {"bytes": png(6), "path": None},
                ],
                image,
            ),
        }
    )
    pq.write_table(table, bench / "vqa.parquet")
    samples, malformed = load_samples(load_benchmark(file_benchmark(bench, "vqa.parquet", "vqa", "anls")))
    assert [s.images for s in samples] == [[png(5)], [(bench / "img" / "b.png").read_bytes()]]
    assert samples[0].references == {"answers": ["cat", "cat"]}
    assert [(m["row"], m["reason"].split(":")[0]) for m in malformed] == [
        (2, "bad_image"),
        (3, "path_escape"),
        (4, "'question' must be a non-empty string, got null"),
    ]


def test_refcoco_boxes_go_to_the_grid_and_keep_the_image_size(bench):
    jsonl(
        bench / "refcoco.jsonl",
        [
            {"expression": "the left circle", "box": [4, 3, 20, 15], "image": "img/a.png"},
            {"expression": "the right bar", "box": [10.5, 0, 40, 30], "image": "img/a.png"},
            {"expression": "too far", "box": [10, 10, 50, 20], "image": "img/a.png"},
            {"expression": "no image", "box": [1, 1, 5, 5]},
            {"expression": "flat", "box": [5, 5, 5, 9], "image": "img/a.png"},
            {"expression": "short", "box": [1, 2, 3], "image": "img/a.png"},
        ],
    )
    path = file_benchmark(bench, "refcoco.jsonl", "refcoco", "grounding")
    samples, malformed = load_samples(load_benchmark(path))
    assert len(samples) == 2 and [m["row"] for m in malformed] == [2, 3, 4, 5]
    first = samples[0]
    assert first.messages == [
        {"role": "user", "content": "<image>\nWhere is the left circle? Answer with a box."}
    ]
    assert first.references == {
        "answers": ["[100, 100, 500, 500]"],
        "box": [4.0, 3.0, 20.0, 15.0],
        "width": 40,
        "height": 30,
    }
    assert all(score("grounding", s.references["answers"][0], s.references) == 1.0 for s in samples)
    assert score("grounding", "[0, 0, 100, 100]", first.references) == 0.0
    assert "outside the 40x30 image" in malformed[0]["reason"] and "no 'image'" in malformed[1]["reason"]


def test_multiple_choice_renders_lettered_options(bench):
    common = {"question": "Which one?", "options": ["cat", "dog", "bird"], "image": "img/b.png"}
    jsonl(
        bench / "mc.jsonl",
        [
            {**common, "answer": "B"},
            {**common, "answer": 2},
            {**common, "answer": "cat"},
            {**common, "answer": "fish"},
            {**common, "answer": 3},
            {**common, "options": "cat", "answer": "A"},
            {**common, "options": ["only"], "answer": "A"},
            {"question": "No image here?", "options": ["yes", "no"], "answer": "b"},
        ],
    )
    path = file_benchmark(bench, "mc.jsonl", "multiple_choice", "multiple_choice")
    samples, malformed = load_samples(load_benchmark(path))
    assert [s.references["answer"] for s in samples] == ["B", "C", "A", "B"]
    assert samples[0].messages[0]["content"] == (
        "<image>\nWhich one?\nA. cat\nB. dog\nC. bird\nAnswer with the option's letter."
    )
    assert samples[0].references == {"answers": ["B"], "options": ["cat", "dog", "bird"], "answer": "B"}
    assert samples[3].images == [] and samples[3].messages[0]["content"].startswith("No image here?\nA. yes")
    assert all(score("multiple_choice", s.references["answers"][0], s.references) == 1.0 for s in samples)
    assert [m["row"] for m in malformed] == [3, 4, 5, 6]
    assert "names none of the 3 options" in malformed[0]["reason"]


def test_file_shots_and_missing_files(bench):
    jsonl(bench / "q.jsonl", [{"question": f"q{i}", "answers": [f"a{i}"]} for i in range(3)])
    path = file_benchmark(bench, "q.jsonl", "vqa", "exact_match", "shots: 1\n")
    samples, _ = load_samples(load_benchmark(path), limit=3)
    assert [m["content"] for m in samples[2].messages] == ["q0", "a0", "q2"]
    (bench / "q.jsonl").unlink()
    with pytest.raises(Exception, match="no file at"):
        load_samples(load_benchmark(path))
