"""The llava adapter (JSON and JSONL conversations with image paths), end to end on small sources."""

from __future__ import annotations

import json
import os
from pathlib import Path

from mm15.data.adapters import image_files, read_shard
from mm15.data.record import IMAGE_TOKEN, Reason, Sample
from tests.data.adapters.helpers import by_key, user_assistant
from tests.fixtures_formats import image_bytes, read_source

# ---- end to end -----------------------------------------------------------------------------------


def test_llava_end_to_end(llava_source):
    records = read_shard(
        "llava", llava_source / "data.json", llava_source, source="s", category="general", split="eval"
    )
    samples = by_key(records)
    assert list(samples) == [
        "data.json:#0 id=a0",
        "data.json:#1 id=a1",
        "data.json:#2 id=a2",
        "data.json:#3 id=a3",
    ]
    red, blue, green = (
        (llava_source / "images" / name).read_bytes() for name in ["red.png", "blue.jpg", "green.png"]
    )
    first, second, text_only, two = samples.values()
    assert first.messages == user_assistant("<image>\nWhat colour is the square?", "Red.")
    assert first.images == [red] and first.meta == {"id": "a0"}
    assert (first.source, first.category, first.split, first.task) == ("s", "general", "eval", "llava")
    assert second.messages[0]["content"] == "<image>\nWhat colour is the square?"  # marker prepended
    assert second.images == [blue]
    assert [m["role"] for m in text_only.messages] == [
        "system",
        "user",
        "assistant",
    ] and text_only.images == []
    assert two.images == [red, green] and two.messages[0]["content"].count(IMAGE_TOKEN) == 2


def test_llava_jsonl_resolves_images_from_its_own_folder(llava_source):
    shard = llava_source / "sub" / "more.jsonl"
    samples = by_key(read_shard("llava", shard, llava_source, source="s", category="general", split="train"))
    assert list(samples) == ["sub/more.jsonl:1 id=b0", "sub/more.jsonl:2 id=b1"]
    assert samples["sub/more.jsonl:1 id=b0"].images == [(llava_source / "images" / "green.png").read_bytes()]


def test_a_relative_source_path_gives_the_same_keys(llava_source, monkeypatch):
    monkeypatch.chdir(llava_source.parent)
    keys = [record.key for record in read_source("llava", Path("llava"))]
    assert keys == [record.key for record in read_source("llava", llava_source)]
    assert keys[0] == "data.json:#0 id=a0" and len(keys) == 6


def test_a_lone_surrogate_is_invalid_utf8_with_a_writable_key(tmp_path):
    record = {
        "id": "x\ud800",
        "conversations": [{"from": "human", "value": "\udc00"}, {"from": "gpt", "value": "A"}],
    }
    (tmp_path / "d.jsonl").write_text(json.dumps(record) + "\n")  # json escapes it as \\ud800
    (reject,) = read_source("llava", tmp_path)
    assert reject.reason == Reason.INVALID_UTF8
    assert reject.key.encode("utf-8") == b"d.jsonl:1 id=x\\ud800"


def test_llava_markers_go_to_the_first_user_turn_one_per_image(tmp_path):
    for name in ["a.png", "b.png"]:
        (tmp_path / name).write_bytes(image_bytes((8, 8), "red"))
    turns = [
        {"from": "system", "value": "Sys."},
        {"from": "human", "value": "Same?"},
        {"from": "gpt", "value": "No."},
    ]
    mismatched = [{"from": "human", "value": "<image> one marker"}, {"from": "gpt", "value": "x"}]
    records = [
        {"image": ["a.png", "b.png"], "conversations": turns},
        {"image": "a.png", "conversations": mismatched},
    ]
    (tmp_path / "d.json").write_text(json.dumps(records))
    first, second = read_source("llava", tmp_path / "d.json")
    assert first.messages[0] == {"role": "system", "content": "Sys."}
    assert first.messages[1] == {"role": "user", "content": "<image>\n<image>\nSame?"}
    assert first.key == "d.json:#0" and first.meta == {}
    assert second.messages[0]["content"] == "<image> one marker"  # a marker exists: left for the validator


# ---- image files ----------------------------------------------------------------------------------


def test_a_symlink_that_stays_inside_the_source_is_followed(tmp_path):
    (tmp_path / "real.png").write_bytes(image_bytes((8, 8), "red"))
    os.symlink("real.png", tmp_path / "alias.png")
    (tmp_path / "d.jsonl").write_text(json.dumps({"image": "alias.png", "conversations": []}) + "\n")
    (sample,) = read_source("llava", tmp_path)
    assert isinstance(sample, Sample) and sample.images == [image_bytes((8, 8), "red")]


def test_an_image_over_the_limit_is_rejected_without_being_read(tmp_path, monkeypatch):
    (tmp_path / "small.png").write_bytes(b"x" * 10)
    (tmp_path / "big.png").write_bytes(b"x" * 11)
    lines = [{"id": name, "image": f"{name}.png", "conversations": []} for name in ["small", "big"]]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(line) for line in lines))

    def refuse(*args, **kwargs):
        raise PermissionError(13, "reading is not allowed in this test")

    monkeypatch.setattr(image_files, "open", refuse, raising=False)
    small, big = read_source("llava", tmp_path, max_file_bytes=10)
    assert (small.reason, big.reason) == (
        Reason.MISSING_FILE,
        Reason.IMAGE_TOO_LARGE,
    )  # only small was opened
    assert "11 bytes, over the 10 limit" in big.detail
    monkeypatch.undo()
    small, big = read_source("llava", tmp_path, max_file_bytes=10)
    assert isinstance(small, Sample) and small.images == [b"x" * 10] and big.reason == Reason.IMAGE_TOO_LARGE


# ---- broken files ---------------------------------------------------------------------------------


def test_a_json_file_that_is_not_a_list_is_one_reject(tmp_path):
    (tmp_path / "d.json").write_text('{"conversations": []}')
    (reject,) = read_source("llava", tmp_path)
    assert (reject.key, reject.reason) == ("d.json", Reason.MALFORMED) and "array" in reject.detail
