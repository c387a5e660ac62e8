"""JSON and JSON Lines input, decoded so that every failure is a `Rejected` with the parser's message."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def iter_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, raw line) for every non-blank line of a JSON Lines file."""
    with open(path, "rb") as file:
        for number, line in enumerate(file, start=1):
            if line.strip():
                yield number, line.rstrip(b"\r\n")
