"""`mm15 ablate`: rerun the paper's data ablations (or a study file of your own) and test their findings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from mm15.cli.options import AsJson, subcommands
from mm15.cli.output import print_json, print_table, say
from mm15.errors import UserError

app = subcommands(
    "Ablation studies (catalogs/ablations/*.yaml or your own file): arms x seeds trained and scored, "
    "findings judged against seed noise."
)

README_START, README_END = "<!-- findings:start -->", "<!-- findings:end -->"


@app.command("list")
def list_studies(as_json: AsJson = False) -> None:
    """The built-in studies: arms and findings."""
    from mm15.ablate import known_studies, load_study

    studies = [load_study(name) for name in known_studies()]
    if as_json:
        rows = {
            s.name: {
                "description": s.description,
                "arms": list(s.arms),
                "findings": [f.expect for f in s.findings],
            }
            for s in studies
        }
        print_json(rows)
        return
    rows = [
        (
            s.name,
            ", ".join(s.arms),
            "; ".join(f"{f.expect} on {f.metric}" for f in s.findings) or "(reported)",
        )
        for s in studies
    ]
    print_table("Ablation studies", ["study", "arms", "findings"], rows)


@app.command("run")
def run(
    study: Annotated[
        str,
        typer.Argument(metavar="STUDY_OR_FILE", help="A built-in study (`mm15 ablate list`) or a YAML path."),
    ],
    seeds: Annotated[int, typer.Option(min=1, help="Seeds per arm (0..K-1); findings need at least 2.")] = 2,
    preset: Annotated[
        str | None, typer.Option(help="Model preset instead of the study's (e.g. tiny).")
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option(min=1, help="Runs at a time (default: the cores), the cores split between them."),
    ] = None,
    track: Annotated[bool, typer.Option(help="MLflow parent run per study, child per arm and seed.")] = True,
    flow: Annotated[
        bool, typer.Option("--flow", help="Run as the Prefect flow `ablate` (a table artifact).")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Train and score every arm of a study on K seeds, then judge each finding: it holds when the
    paired difference over seeds has the expected sign and exceeds twice its standard error.

    Runs are cached by their inputs (manifests, CPT and SFT run folders, evaluations), so arms shared
    with other studies train once and an interrupted study resumes where it stopped. Results, chart
    and tables go to MM15_HOME/ablations/STUDY/."""
    from mm15.ablate import load_study, run_study
    from mm15.ablate.report import arms_table, findings_table

    loaded = load_study(study, preset)
    say(f"{loaded.name}: {len(loaded.arms)} arms x {seeds} seeds")
    if flow:
        from mm15.cli.orchestration import run_flow, use_local_prefect

        use_local_prefect()
        from flows.ablate import ablate

        result = run_flow(ablate, study=study, seeds=seeds, preset=preset, jobs=jobs, track=track)
    else:
        result = run_study(loaded, list(range(seeds)), jobs=jobs, track=track, done=_report_cell)
    if as_json:
        print_json(result)
        return
    typer.echo(arms_table(result) + "\n\n" + findings_table([result]))
    say(f"Chart: {result['chart']}")


def _report_cell(cell) -> None:
    took = f"{cell.seconds:.0f} s" if cell.seconds else "cached"
    say(f"  {cell.arm} seed {cell.seed}: MMBase {cell.mmbase} ({took})")


@app.command("table")
def table(
    studies: Annotated[
        list[str] | None,
        typer.Argument(metavar="[STUDY]...", help="Studies to list (default: the built-ins)."),
    ] = None,
    update: Annotated[
        Path | None,
        typer.Option(help=f"Write the table into this file between {README_START} and {README_END}."),
    ] = None,
) -> None:
    """The findings of the studies' latest runs (MM15_HOME/ablations/*/result.json) as a markdown table."""
    from mm15.ablate import findings_table, known_studies, saved_results

    names = studies or known_studies()
    results = saved_results(names)
    missing = sorted(set(names) - {r["study"] for r in results})
    if missing:
        raise UserError(f"no saved result for {', '.join(missing)}: run `mm15 ablate run STUDY` first")
    text = findings_table(results)
    held = sum(f["holds"] for r in results for f in r["findings"])
    total = sum(len(r["findings"]) for r in results)
    text += f"\n\n{held} of {total} findings hold."
    if update is None:
        typer.echo(text)
        return
    from mm15.atomic import write_text_atomic

    current = update.read_text()
    pattern = re.compile(re.escape(README_START) + ".*?" + re.escape(README_END), re.S)
    if not pattern.search(current):
        raise UserError(f"{update}: no {README_START} ... {README_END} section to replace")
    write_text_atomic(update, pattern.sub(lambda _: f"{README_START}\n{text}\n{README_END}", current))
    say(f"Updated the findings table in {update}")
