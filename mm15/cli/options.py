"""Options shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Home = Annotated[
    Path | None,
    typer.Option(
        "--home", help="State folder (catalog, manifests, Prefect database). Default: $MM15_HOME or ./.mm15"
    ),
]
Snapshot = Annotated[
    int | None,
    typer.Option(help="Read this catalog snapshot (see `mm15 catalog snapshots`) instead of the latest."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def subcommands(help: str) -> typer.Typer:
    """A command group: `mm15 GROUP` alone shows its help."""
    return typer.Typer(help=help, no_args_is_help=True, rich_markup_mode=None)
