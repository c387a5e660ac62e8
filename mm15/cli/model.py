"""`mm15 model`: the model presets and their architecture."""

from __future__ import annotations

from typing import Annotated

import typer

from mm15.cli.options import AsJson, subcommands
from mm15.cli.output import print_json
from mm15.errors import UserError

app = subcommands("The MM1.5 model: presets and architecture.")


@app.command("info")
def info(
    preset: Annotated[str, typer.Option(help="tiny, tiny-moe, 1b, 3b.")] = "tiny",
    as_json: AsJson = False,
) -> None:
    """The architecture of a model preset and its parameter counts per component (vision tower, connector,
    language model). Built on the meta device: no weights are loaded or downloaded."""
    from mm15.model.info import describe, format_description

    try:
        description = describe(preset)
    except ValueError as e:
        raise UserError(str(e)) from None
    if as_json:
        print_json(description)
    else:
        typer.echo(format_description(description))
