"""JSON and JSON Lines input, decoded so that every failure is a `Rejected` with the parser's message."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from mm15.data.adapters.origin import Rejected
from mm15.data.record import Reason


def parse_json(data: bytes) -> Any:
    """The value encoded in `data` (UTF-8, an optional byte-order mark allowed)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise Rejected(Reason.INVALID_UTF8, str(error)) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno} column {error.colno}" if error.lineno > 1 else f"column {error.colno}"
        raise Rejected(Reason.INVALID_JSON, f"{error.msg} at {where}") from None
    except ValueError as error:  # e.g. an integer longer than Python's 4300-digit limit
        raise Rejected(Reason.INVALID_JSON, str(error)) from None
    except RecursionError:
        raise Rejected(Reason.INVALID_JSON, "nested too deeply") from None


def load_json_file(path: Path) -> Any:
    """The value in a JSON file; an unreadable file raises OSError, an unparseable one `Rejected`."""
    return parse_json(path.read_bytes())


def iter_lines(path: Path, part: tuple[int, int] = (0, 0)) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, raw line) for every non-blank line of a JSON Lines file, or of the lines that
    start within `part` = (first byte, bytes) when its length is not 0 (see `line_parts`)."""
    start, length = part
    with open(path, "rb") as file:
        number = _newlines_before(file, start) + 1
        file.seek(start)
        offset = start
        for line in file:
            if length and offset >= start + length:
                return
            if line.strip():
                yield number, line.rstrip(b"\r\n")
            number += 1
            offset += len(line)


def line_parts(path: Path, part_bytes: int) -> list[tuple[int, int]]:
    """Cut a JSON Lines file into parts of about `part_bytes` that start and end at line starts:
    [(first byte, bytes), ...]; one part (0, 0), meaning the whole file, when it is small."""
    size = path.stat().st_size
    if size <= part_bytes:
        return [(0, 0)]
    starts = [0]
    with open(path, "rb") as file:
        while starts[-1] + part_bytes < size:
            file.seek(starts[-1] + part_bytes)
            file.readline()  # to the start of the next line
            if file.tell() >= size:
                break
            starts.append(file.tell())
    ends = [*starts[1:], size]
    return [(a, b - a) for a, b in zip(starts, ends, strict=True)]


def _newlines_before(file: BinaryIO, offset: int) -> int:
    count, file_offset = 0, 0
    file.seek(0)
    while file_offset < offset:
        block = file.read(min(1 << 20, offset - file_offset))
        if not block:
            break
        count += block.count(b"\n")
        file_offset += len(block)
    return count
