"""The samples of a benchmark: prompt turns, images and the references its metric scores against.

A catalog source reads one split of the catalog (read-only, at a snapshot) in stored-hash order; the prompt
is the stored conversation without its final assistant turn. A file source reads a Parquet or JSON Lines
file (layouts `vqa`, `refcoco`, `multiple_choice`) whose images are embedded or inside the file's folder.
Rows that cannot be used are returned with their reason, never dropped silently.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mm15.catalog import open_catalog
from mm15.data.adapters.image_files import read_limited, resolve_inside
from mm15.data.adapters.json_input import iter_lines, parse_json
from mm15.data.adapters.origin import Rejected, short, type_name
from mm15.data.record import IMAGE_TOKEN
from mm15.data.validate import Limits, decode_image
from mm15.errors import UserError
from mm15.eval.benchmarks import BenchmarkConfig
from mm15.model.grounding import box_to_text

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
PARQUET_BATCH = 64  # rows decoded at a time from a Parquet file


@dataclass
class EvalSample:
    """One prompt to generate from: `messages` end with the user turn, `images` follow its `<image>`
    markers in order, `references` hold `answers` (list[str]) and what the metric needs besides
    (`box` + `width`/`height`, `options` + `answer`)."""

    benchmark: str
    sample_id: str
    messages: list[dict]
    images: list[bytes]
    references: dict


class Malformed(Exception):
    """A row that cannot become an EvalSample; the message is the reason."""


@dataclass
class _Item:
    sample_id: str
    group: str  # shots come from the same group (the task) first
    prompt: list[dict]
    answer: str  # the assistant turn when the item is a shot
    references: dict
    images: list[Any]  # catalog: image ids; file: bytes


def load_samples(
    benchmark: BenchmarkConfig,
    catalog_dir: Path | None = None,
    snapshot: int | None = None,
    limit: int | None = None,
) -> tuple[list[EvalSample], list[dict]]:
    """(the first `limit` samples (all when None), the malformed rows read: {"row", "reason"}), rows numbered
    from 0 in the order read. `catalog_dir` (default MM15_HOME/catalog) and `snapshot` (default the latest)
    are used by catalog sources only."""
    if limit is not None and limit < 0:
        raise UserError(f"the sample limit must be 0 or more (got {limit})")
    if benchmark.source.catalog is not None:
        with open_catalog(catalog_dir, snapshot=snapshot) as catalog:
            items, malformed = _catalog_items(benchmark, catalog.con)
            return _assemble(benchmark, items, limit, lambda ids: _image_bytes(catalog.con, ids)), malformed
    stop = None if benchmark.shots else limit  # shots may come from any row: read them all
    items, malformed = _file_items(benchmark, stop)
    return _assemble(benchmark, items, limit, lambda images: images), malformed


def shot_indices(groups: list[str], k: int, shots: int) -> list[int]:
    """Positions of item k's shots: the next items of its group, wrapping around, then of other groups."""
    after = [(k + j) % len(groups) for j in range(1, len(groups))]
    same = [i for i in after if groups[i] == groups[k]]
    return (same + [i for i in after if groups[i] != groups[k]])[:shots]


def _assemble(
    benchmark: BenchmarkConfig, items: list[_Item], limit: int | None, fetch: Callable[[list], list[bytes]]
) -> list[EvalSample]:
    groups, samples = [item.group for item in items], []
    for k, item in enumerate(items[:limit] if limit is not None else items):
        shots = [items[i] for i in shot_indices(groups, k, benchmark.shots)]
        # the query's system turns first, then the shots answered, then the query's own turns
        messages = [dict(m) for m in item.prompt if m["role"] == "system"]
        for shot in shots:
            messages += [dict(m) for m in shot.prompt if m["role"] != "system"]
            messages.append({"role": "assistant", "content": shot.answer})
        messages += [dict(m) for m in item.prompt if m["role"] != "system"]
        images = [image for shot in [*shots, item] for image in shot.images]
        samples.append(EvalSample(benchmark.name, item.sample_id, messages, images, dict(item.references)))
    found = iter(fetch([image for sample in samples for image in sample.images]))
    for sample in samples:
        sample.images = [next(found) for _ in sample.images]
    return samples


def _catalog_items(benchmark: BenchmarkConfig, con: Any) -> tuple[list[_Item], list[dict]]:
    source = benchmark.source.catalog
    assert source is not None
    where, params = ["split = ?", "category IN (SELECT unnest(?))"], [source.split, source.categories]
    for column, values in (("source", source.sources), ("task", source.tasks)):
        if values is not None:
            where.append(f"{column} IN (SELECT unnest(?))")
            params.append(values)
    sql = "SELECT sample_id, task, messages, image_ids, meta FROM samples WHERE " + " AND ".join(where)
    rows = con.execute(sql + " ORDER BY hash64, sample_id", params).fetchall()
    items, malformed = [], []
    for row, values in enumerate(rows):
        try:
            items.append(_catalog_item(benchmark.metric, *values))
        except Malformed as error:
            malformed.append({"row": row, "sample_id": values[0], "reason": str(error)})
    return items, malformed


def _catalog_item(
    metric: str, sample_id: str, task: str, messages: list, image_ids: list | None, meta_text: str
) -> _Item:
    if not messages or messages[-1]["role"] != "assistant":
        raise Malformed("the conversation does not end with an assistant turn")
    prompt = [{"role": m["role"], "content": m["content"]} for m in messages[:-1]]
    if not prompt or prompt[-1]["role"] != "user":
        raise Malformed("no user turn before the final answer")
    image_ids = list(image_ids or [])
    _check_markers(prompt, len(image_ids))
    try:
        meta = json.loads(meta_text or "{}")
    except json.JSONDecodeError as error:
        raise Malformed(f"meta is not JSON: {error.msg}") from None
    meta = meta if isinstance(meta, dict) else {}
    answer = meta.get("answer", messages[-1]["content"])
    if not isinstance(answer, str) or not answer.strip():
        raise Malformed("no answer (meta 'answer' or the final assistant turn)")
    references: dict[str, Any] = {"answers": [answer]}
    if "answer_box" in meta or metric == "grounding":
        references["box"] = _box(meta.get("answer_box"), "meta 'answer_box'")
    if "choices" in meta or metric == "multiple_choice":
        options = _options(meta.get("choices"), "meta 'choices'")
        references |= {"options": options, "answer": _letter(answer, options)}
    return _Item(sample_id, task, prompt, messages[-1]["content"], references, image_ids)


def _image_bytes(con: Any, image_ids: list[str]) -> list[bytes]:
    sql = "SELECT image_id, bytes FROM images WHERE image_id IN (SELECT unnest(?))"
    found = dict(con.execute(sql, [sorted(set(image_ids))]).fetchall())
    missing = [i for i in image_ids if i not in found]
    if missing:
        raise UserError(f"{len(missing)} images of eval samples are not in the catalog (first: {missing[0]})")
    return [found[i] for i in image_ids]


def _file_items(benchmark: BenchmarkConfig, stop: int | None) -> tuple[list[_Item], list[dict]]:
    file = benchmark.source.file
    assert file is not None
    path = Path(file.path)
    if not path.is_file():
        raise UserError(f"benchmark {benchmark.name}: no file at {path}")
    items, malformed = [], []
    for row, record in enumerate(_records(path)):
        if stop is not None and len(items) >= stop:
            break
        try:
            if isinstance(record, Malformed):
                raise record
            items.append(_file_item(file.format, benchmark.prompt_template, record, path.parent, row))
        except Malformed as error:
            malformed.append({"row": row, "reason": short(str(error))})
    return items, malformed


def _records(path: Path) -> Iterator[Any]:
    """The records of a JSON Lines or Parquet file in order; a line that is not JSON is a Malformed."""
    if path.suffix.lower() == ".jsonl":
        for _, line in iter_lines(path):
            try:
                yield parse_json(line)
            except Rejected as error:
                yield Malformed(f"{error.reason}: {error.detail}")
        return
    try:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=PARQUET_BATCH):
            yield from batch.to_pylist()
    except (pa.ArrowException, OSError, ValueError) as error:
        raise UserError(f"{path}: not a readable Parquet file: {error}") from None


def _file_item(fmt: str, template: str, record: Any, folder: Path, row: int) -> _Item:
    """One row of a `vqa`, `refcoco` or `multiple_choice` file as an item (Malformed if it cannot be)."""
    if not isinstance(record, dict):
        raise Malformed(f"expected an object, got {type_name(record)}")
    if fmt == "refcoco":
        fields = {"expression": _text(record, "expression")}
        box = _box(record.get("box"), "'box'", grid=False)
        images = _images(record, folder, required=True)
        width, height = images[0][1]
        if box[2] > width or box[3] > height:
            raise Malformed(f"'box' {box} lies outside the {width}x{height} image")
        answers = [box_to_text(box, width, height)]
        references = {"answers": answers, "box": box, "width": width, "height": height}
    elif fmt == "multiple_choice":
        fields = {"question": _text(record, "question")}
        options = _options(record.get("options"), "'options'")
        answers = [_letter(record.get("answer"), options)]
        fields["options"] = "\n".join(f"{LETTERS[k]}. {option}" for k, option in enumerate(options))
        references = {"answers": answers, "options": options, "answer": answers[0]}
        images = _images(record, folder, required=False)
    else:
        fields = {"question": _text(record, "question")}
        answers = record.get("answers")
        answers = [answers] if isinstance(answers, str) else answers
        if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
            raise Malformed(f"'answers' must be a string or a list of strings, got {type_name(answers)}")
        if not any(a.strip() for a in answers):
            raise Malformed("'answers' is empty")
        references = {"answers": answers}
        images = _images(record, folder, required=False)
    prompt = [{"role": "user", "content": f"{IMAGE_TOKEN}\n" * len(images) + template.format(**fields)}]
    _check_markers(prompt, len(images))
    answer = next(a for a in answers if a.strip())
    return _Item(str(row), "", prompt, answer, references, [data for data, _ in images])


def _text(record: dict, key: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value.strip():
        raise Malformed(f"'{key}' must be a non-empty string, got {type_name(value)}")
    return value


def _images(record: dict, folder: Path, required: bool) -> list[tuple[bytes, tuple[int, int]]]:
    """The row's image as [(bytes, (width, height))], decoded to check it; [] when optional and absent."""
    image = record.get("image")
    if image is None:
        if required:
            raise Malformed("no 'image'")
        return []
    if isinstance(image, dict):
        image = image.get("bytes") or image.get("path")
    if isinstance(image, str):
        try:
            image = read_limited(resolve_inside(folder, folder, image), Limits.max_image_bytes, image)
        except Rejected as error:
            raise Malformed(f"{error.reason}: {error.detail}") from None
    if not isinstance(image, bytes):
        raise Malformed(f"'image' must be bytes, a path or {{bytes, path}}, got {type_name(image)}")
    decoded, reason, detail = decode_image(image, Limits())
    if decoded is None:
        raise Malformed(f"{reason}: {detail}")
    decoded.close()  # its size is kept
    return [(image, decoded.size)]


def _box(value: Any, what: str, grid: bool = True) -> list[float]:
    """[x1, y1, x2, y2] with x1 < x2 and y1 < y2, non-negative; below 1000 when in the grid."""
    if not (isinstance(value, list | tuple) and len(value) == 4) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    ):
        raise Malformed(f"{what} must be 4 numbers [x1, y1, x2, y2], got {short(repr(value), 60)}")
    x1, y1, x2, y2 = (float(v) for v in value)
    if not (0 <= x1 < x2 and 0 <= y1 < y2) or (grid and max(x2, y2) >= 1000):
        raise Malformed(f"{what} {list(value)} is not a box{' in [0, 1000)' if grid else ''}")
    return [x1, y1, x2, y2]


def _options(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(o, str) and o.strip() for o in value):
        raise Malformed(f"{what} must be a list of non-empty strings, got {type_name(value)}")
    if not 2 <= len(value) <= len(LETTERS):
        raise Malformed(f"{what} must hold 2 to {len(LETTERS)} options, got {len(value)}")
    return list(value)


def _letter(answer: Any, options: list[str]) -> str:
    """The letter of the option `answer` names: a 0-based index, a letter, or the option's text."""
    text = answer.strip() if isinstance(answer, str) else None
    index = answer if isinstance(answer, int) and not isinstance(answer, bool) else -1
    if text is not None and len(text) == 1 and text.isalpha():
        index = LETTERS.find(text.upper())
    elif text is not None and text in options:
        index = options.index(text)
    if not 0 <= index < len(options):
        raise Malformed(f"answer {answer!r} names none of the {len(options)} options")
    return LETTERS[index]


def _check_markers(prompt: list[dict], n_images: int) -> None:
    markers = sum(m["content"].count(IMAGE_TOKEN) for m in prompt)
    if markers != n_images:
        raise Malformed(f"{markers} {IMAGE_TOKEN} markers but {n_images} images")
