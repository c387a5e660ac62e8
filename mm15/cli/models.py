"""`mm15 promote` and `mm15 models`: the registered models (MLflow registry), their scores and champions."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from mm15.cli.options import AsJson, subcommands
from mm15.cli.output import print_json, print_table, say
from mm15.errors import UserError

app = subcommands("Registered models: versions, scores, aliases (champion, challenger).")


def promote(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Registered model, e.g. mm15-tiny.")],
    version: Annotated[int, typer.Argument(metavar="VERSION", min=1, help="Version to promote.")],
    force: Annotated[
        bool,
        typer.Option("--force", help="Make it the champion whatever the rule says (recorded as forced)."),
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Run the promotion rule (catalogs/promotion.yaml) for VERSION of NAME against the current champion:
    it becomes the champion when its MMBase is higher and no tracked category drops by more than the
    tolerance. The decision is recorded on the version (tags mm15.gate.*). Models are tracked at
    $MLFLOW_TRACKING_URI, else MM15_HOME/mlflow.db."""
    from mm15.registry import promote as run_rule

    decision = run_rule(name, version, force=force)
    if as_json:
        print_json({"name": name, **dataclasses.asdict(decision)})
        return
    if decision.champion == version:
        say(f"{name} version {version} is the champion already: nothing to do")
        return
    against = "no champion" if decision.champion is None else f"champion version {decision.champion}"
    if decision.promoted:
        verdict = "promoted to champion" + (" (forced)" if decision.forced else "")
    else:
        verdict = "not promoted"
    say(f"{name} version {version} {verdict}, against {against}: {decision.reason}")
    if decision.deltas:
        rows = [[_label(k), f"{v:+.2f}"] for k, v in decision.deltas.items()]
        print_table("Challenger minus champion (points)", ["", "delta"], rows)


@app.command("list")
def list_(
    name: Annotated[
        str | None, typer.Argument(metavar="NAME", help="Only this registered model (default: every mm15-*).")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Every version of the registered models named mm15-* (or NAME): aliases, MMBase, the tracked
    categories' scores (0-100), the promotion decision and when it was registered."""
    from mm15.registry import list_models, load_gate_config

    rows = list_models(name)
    if as_json:
        print_json(rows)
        return
    if not rows:
        say("No registered mm15 models yet: `mm15 run` registers one after training and evaluation.")
        return
    tracked = load_gate_config().tracked
    table = [
        [
            row["name"],
            row["version"],
            ", ".join(row["aliases"]),
            _score(row["mmbase"]),
            *(_score(row["categories"].get(key)) for key in tracked),
            _promoted(row),
            row["created"],
        ]
        for row in rows
    ]
    head = ["model", "version", "aliases", "MMBase", *tracked, "promoted", "created"]
    print_table("Registered models", head, table)


def _label(key: str) -> str:
    return "MMBase" if key == "mmbase" else key


def _score(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _promoted(row: dict) -> str:
    if row["promoted"] is None:
        return ""
    return ("yes" + (" (forced)" if row["forced"] else "")) if row["promoted"] else "no"


@app.command("register")
def register(
    checkpoint: Annotated[
        Path, typer.Argument(metavar="CHECKPOINT", help="A checkpoint-<step> folder of a training run.")
    ],
    preset: Annotated[str, typer.Option(help="The model's preset: registered as mm15-PRESET.")] = "tiny",
    limit: Annotated[
        int, typer.Option(help="Samples per benchmark when the checkpoint must be scored first (0: all).")
    ] = 32,
) -> None:
    """Register CHECKPOINT as a version of mm15-PRESET (a pyfunc model with its model card and lineage),
    scored first against the untrained PRESET if it has not been, then run the promotion gate: the new
    version gets the alias `challenger`, and `champion` when the rule says so. A checkpoint registered
    before gets its version back."""
    from mm15.cli.orchestration import run_flow, use_local_prefect

    if not (checkpoint / "config.json").is_file():
        raise UserError(f"{checkpoint} is not a checkpoint folder (no config.json)")
    use_local_prefect()
    from flows.register import register as register_flow

    model = run_flow(register_flow, checkpoint=str(checkpoint.resolve()), preset=preset, limit=limit or None)
    decision = model["decision"]
    alias = "champion" if decision["promoted"] else "challenger"
    say(f"{model['name']} version {model['version']} @{alias}: {decision['reason']}")
