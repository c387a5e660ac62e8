"""LLaVA-style conversations: a JSON list of records, or JSON Lines with one record per line.

A record is ``{"id", "image": path | [paths] (optional), "conversations": [{"from", "value"}]}``;
image paths are relative to the JSON file's folder and must stay inside the source folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mm15.data.adapters.image_files import read_image
from mm15.data.adapters.image_markers import with_image_markers
from mm15.data.adapters.json_input import iter_lines, load_json_file, parse_json
from mm15.data.adapters.origin import Rejected, ShardOrigin, short, type_name
from mm15.data.adapters.turns import parse_turns
from mm15.data.record import Reason, Reject, Sample

ROLES = {"human": "user", "gpt": "assistant", "system": "system"}


def read_llava(
    shard: Path, root: Path, origin: ShardOrigin, max_file_bytes: int
) -> Iterator[Sample | Reject]:
    """One Sample or Reject per record; a JSON file that does not parse is one Reject for the file."""
    if shard.suffix.lower() == ".jsonl":
        for number, line in iter_lines(shard, origin.part):
            try:
                record = parse_json(line)
            except Rejected as error:
                yield origin.reject(str(number), error)
                continue
            yield _sample_or_reject(record, str(number), origin, shard.parent, root, max_file_bytes)
        return
    try:
        records = load_json_file(shard)
        if not isinstance(records, list):
            raise Rejected(Reason.MALFORMED, f"expected a JSON array of records, got {type_name(records)}")
    except Rejected as error:
        yield origin.reject("", error)
        return
    for index, record in enumerate(records):
        yield _sample_or_reject(record, f"#{index}", origin, shard.parent, root, max_file_bytes)


def _sample_or_reject(
    record: Any, position: str, origin: ShardOrigin, base: Path, root: Path, max_file_bytes: int
) -> Sample | Reject:
    within = _within(position, record)
    try:
        return to_sample(record, origin, within, base, root, max_file_bytes)
    except Rejected as error:
        return origin.reject(within, error)


def to_sample(
    record: Any, origin: ShardOrigin, within: str, base: Path, root: Path, max_file_bytes: int
) -> Sample:
    """The Sample for one parsed record; raises `Rejected` for a record of the wrong shape."""
    if not isinstance(record, dict):
        raise Rejected(Reason.MALFORMED, f"record must be an object, got {type_name(record)}")
    if "conversations" not in record:
        raise Rejected(Reason.MALFORMED, "record has no 'conversations'")
    messages = parse_turns(
        record["conversations"], field="conversations", role_key="from", content_key="value", roles=ROLES
    )
    images = [read_image(root, base, ref, max_file_bytes) for ref in _image_refs(record)]
    meta = {"id": record["id"]} if isinstance(record.get("id"), str | int) else {}
    return origin.sample(within, with_image_markers(messages, len(images)), images=images, meta=meta)


def _within(position: str, record: Any) -> str:
    """`#3 id=abc`: the record's position, and its id when it has one."""
    has_id = isinstance(record, dict) and isinstance(record.get("id"), str | int)
    return f"{position} id={short(str(record['id']), 60)}" if has_id else position


def _image_refs(record: dict[str, Any]) -> list[Any]:
    if "image" in record and "images" in record:
        raise Rejected(Reason.MALFORMED, "record has both 'image' and 'images'")
    refs = record.get("image", record.get("images"))  # "images" is a common multi-image variant
    if refs is None:
        return []
    if isinstance(refs, str):
        return [refs]
    if isinstance(refs, list):
        return refs
    raise Rejected(Reason.MALFORMED, f"'image' must be a path or a list of paths, got {type_name(refs)}")
