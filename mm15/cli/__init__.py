"""The `mm15` command: curate, ingest and query the catalog; build mixtures; run the pipeline.

One module per command group. Command modules import the flows they run directly, inside the command
(so the library never imports Prefect, and read-only commands start fast without it).
"""

from __future__ import annotations

import os
import sys

import typer

from mm15.cli import ablate, catalog, curate, evaluate, mixture, model, models, pipeline, servers, train
from mm15.cli.options import Home
from mm15.errors import UserError

app = typer.Typer(
    help="mm15: the MM1.5 data-centric training recipe as a pipeline (Prefect, Parquet + DuckDB, torch, MLflow).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
)
app.command()(curate.curate)
app.command()(curate.ingest)
app.command()(train.train)
app.command(name="eval")(evaluate.evaluate)
app.command()(pipeline.run)
app.command()(servers.up)
app.command()(servers.down)
app.command()(models.promote)
app.add_typer(ablate.app, name="ablate")
app.add_typer(catalog.app, name="catalog")
app.add_typer(mixture.app, name="mixture")
app.add_typer(model.app, name="model")
app.add_typer(models.app, name="models")


@app.callback()
def main_options(home: Home = None) -> None:
    """Everything a run writes lives under one home folder: --home, else $MM15_HOME, else ./.mm15."""
    if home is not None:
        os.environ["MM15_HOME"] = str(home.resolve())


def main() -> None:
    try:
        app()
    except UserError as e:
        typer.echo(f"error: {' '.join(str(e).split())}", err=True)
        sys.exit(2)


__all__ = ["app", "main"]
