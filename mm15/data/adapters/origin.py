"""Where an adapter's records come from, and the one way a record fails.

Record parsers raise :class:`Rejected` at the first problem; the shard reader turns it into a
:class:`~mm15.data.record.Reject` carrying the record's key, so each input record ends as
exactly one Sample or one Reject.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mm15.data.record import Reason, Reject, Sample

MAX_DETAIL_CHARS = 200


class Rejected(Exception):
    """A record (or a whole file) that cannot become a Sample, with a reason from `Reason`."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def encodable(text: str) -> str:
    """`text` with lone surrogates (from `\\ud800` escapes or undecodable file names) escaped, so it can
    be written as UTF-8."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def short(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    """One line of at most `limit` characters, for reject details and keys."""
    line = " ".join(encodable(str(text)).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def type_name(value: Any) -> str:
    """The JSON name of a parsed value's type, for messages such as "expected a list, got object"."""
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number" if isinstance(value, int | float) else type(value).__name__)


@dataclass(frozen=True)
class ShardOrigin:
    """The source, category and split every record of a shard gets, and the shard's name in keys."""

    source: str
    category: str
    split: str
    label: str  # the shard's path relative to the source folder: the part of a key before the colon
    task: str  # the format name
    part: tuple[int, int] = (0, 0)  # JSON Lines: (first byte, bytes) of the lines to read; (0, 0) all

    @classmethod
    def of(
        cls,
        shard: Path,
        root: Path,
        *,
        source: str,
        category: str,
        split: str,
        task: str,
        part: tuple[int, int] = (0, 0),
    ) -> ShardOrigin:
        label = shard.name
        for inner, outer in [(shard, root), (shard.absolute(), root.absolute())]:
            if inner.is_relative_to(outer):
                label = inner.relative_to(outer).as_posix()
                break
        return cls(
            source=source, category=category, split=split, label=encodable(label), task=task, part=part
        )

    def key(self, within: str = "") -> str:
        return f"{self.label}:{encodable(within)}" if within else self.label

    def sample(self, within: str, messages: list[dict[str, str]], **fields: Any) -> Sample:
        """A Sample of this shard; `Rejected` if its text cannot be written as UTF-8."""
        try:
            for message in messages:  # strings: encoding each is far cheaper than the JSON of all
                message["role"].encode("utf-8")
                message["content"].encode("utf-8")
            if meta := fields.get("meta"):
                json.dumps(meta, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as error:  # JSON may escape a lone surrogate: "\ud800"
            raise Rejected(Reason.INVALID_UTF8, f"text is not valid Unicode: {error.reason}") from None
        return Sample(
            source=self.source,
            key=self.key(within),
            category=self.category,
            split=self.split,
            messages=messages,
            task=self.task,
            **fields,
        )

    def reject(self, within: str, error: Rejected) -> Reject:
        return Reject(
            source=self.source, key=self.key(within), reason=error.reason, detail=short(error.detail)
        )
