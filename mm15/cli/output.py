"""How the CLI prints: tables and lines of data, literally (values are never read as markup), and never
cut to 80 columns when the output goes to a pipe or a file."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

# Without a terminal, Rich would wrap and cut tables at 80 columns: give it room for any row instead.
console = Console(markup=False, highlight=False, emoji=False, width=None if sys.stdout.isatty() else 100_000)


def cell(value: Any) -> Text:
    """A value as it is: bytes as their size, None as empty, everything else as its plain text."""
    if value is None:
        return Text("")
    if isinstance(value, bytes | bytearray | memoryview):
        return Text(f"<{len(value)} bytes>")
    return Text(str(value))


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    table = Table(title=Text(title) if title else None, title_justify="left")
    for column in columns:
        table.add_column(Text(str(column)))
    for row in rows:
        table.add_row(*(cell(v) for v in row))
    console.print(table)


def say(text: str) -> None:
    """One line of plain text on stdout."""
    console.print(Text(text))


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    return str(value)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, default=_json_default))
