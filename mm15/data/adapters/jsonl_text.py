"""Text-only conversations: JSON Lines of ``{"messages": [{"role", "content"}]}``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mm15.data.adapters.json_input import iter_lines, parse_json
from mm15.data.adapters.origin import Rejected, ShardOrigin, type_name
from mm15.data.adapters.turns import parse_turns
from mm15.data.record import ROLES, Reason, Reject, Sample

TURNS = {"field": "messages", "role_key": "role", "content_key": "content", "roles": {r: r for r in ROLES}}


def read_jsonl_text(
    shard: Path, root: Path, origin: ShardOrigin, max_file_bytes: int
) -> Iterator[Sample | Reject]:
    """One Sample or Reject per non-blank line, keyed by line number (images are never read)."""
    for number, line in iter_lines(shard, origin.part):
        try:
            record: Sample | Reject = to_sample(parse_json(line), origin, str(number))
        except Rejected as error:
            record = origin.reject(str(number), error)
        yield record


def to_sample(record: Any, origin: ShardOrigin, within: str) -> Sample:
    """The Sample for one parsed line; raises `Rejected` for a line of the wrong shape."""
    if not isinstance(record, dict):
        raise Rejected(Reason.MALFORMED, f"line must be an object, got {type_name(record)}")
    if "messages" not in record:
        raise Rejected(Reason.MALFORMED, "line has no 'messages'")
    meta = {"id": record["id"]} if isinstance(record.get("id"), str | int) else {}
    return origin.sample(within, parse_turns(record["messages"], **TURNS), meta=meta)
