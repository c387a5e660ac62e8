"""`mm15 mixture`: build mixture manifests, show their shares, write ablation sweeps."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mm15.cli.options import AsJson, Snapshot, subcommands
from mm15.cli.orchestration import run_flow, use_local_prefect
from mm15.cli.output import print_json, print_table, say
from mm15.errors import UserError

app = subcommands("SFT and CPT mixtures: build manifests, show shares, generate ablation sweeps.")


def print_mixture(manifest: str | Path, as_json: bool = False) -> None:
    """The summary of a built manifest: expected vs realised shares, repetition, lineage."""
    from mm15.mixture import read_summary, render_text, to_json

    summary = read_summary(Path(manifest))
    if as_json:
        print_json(to_json(summary))
    else:
        typer.echo(render_text(summary))


@app.command("build")
def build(
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME",
            help="A mixture in catalogs/mixtures/ (all, base, single_image, cpt, ...) or a YAML path.",
        ),
    ],
    samples: Annotated[int, typer.Option(help="Positions in the manifest (samples drawn).")] = 10_000,
    seed: Annotated[
        int, typer.Option(help="Same snapshot, spec and seed give the same manifest, byte for byte.")
    ] = 0,
    snapshot: Snapshot = None,
) -> None:
    """Build a deterministic manifest of mixture NAME from a catalog snapshot (default: the latest)."""
    from mm15.catalog import open_catalog
    from mm15.mixture import check_against_catalog, load_spec

    if samples < 1:
        raise UserError("--samples must be positive")
    spec = load_spec(name)
    with open_catalog(snapshot=snapshot) as catalog:
        check_against_catalog(spec, catalog.con)
        snapshot = catalog.snapshot_id()
    use_local_prefect()
    from flows.build_mixture import build_mixture

    result = run_flow(build_mixture, name=name, samples=samples, seed=seed, snapshot=snapshot)
    print_mixture(result["manifest"])
    say(f"Manifest: {result['manifest']}")


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(metavar="NAME", help="A mixture built with `mm15 mixture build`.")],
    as_json: AsJson = False,
) -> None:
    """Expected and realised shares per category and source, sample counts, repetition factors, the
    snapshot and the manifest hash of the latest build of NAME."""
    from mm15 import paths
    from mm15.mixture.store import latest_manifest

    print_mixture(latest_manifest(paths.manifests_dir(), name), as_json)


def _numbers(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"not a list of numbers: {text!r}") from None


@app.command("sweep")
def sweep(
    base: Annotated[str, typer.Argument(metavar="BASE", help="The mixture to vary, e.g. all.")],
    category: Annotated[str | None, typer.Option(help="Vary this category's alpha (with --alphas).")] = None,
    alphas: Annotated[str, typer.Option(help="Comma-separated alphas, e.g. 0.05,0.1,0.2.")] = "",
    group: Annotated[
        str | None, typer.Option(help="Vary this group's weight (with --weights), e.g. multi_image.")
    ] = None,
    weights: Annotated[str, typer.Option(help="Comma-separated group weights, e.g. 0,0.1,0.2.")] = "",
    out: Annotated[
        Path | None, typer.Option(help="Folder for the variants' YAML (default catalogs/mixtures/).")
    ] = None,
) -> None:
    """Write named variants of BASE for ablations, as the paper's: one category's alpha over a list of
    values, or the multi-image / text-only group weight over a list. Build each with `mixture build`."""
    from mm15.mixture import expected_shares, load_spec, sweep_specs, write_sweep

    variants = sweep_specs(
        load_spec(base), category=category, alphas=_numbers(alphas), group=group, weights=_numbers(weights)
    )
    written = write_sweep(variants, out)
    rows = [
        [v.name, str(p), ", ".join(f"{c} {s:.1%}" for c, s in expected_shares(v).items())]
        for v, p in zip(variants, written, strict=True)
    ]
    print_table("Variants", ["mixture", "file", "expected shares"], rows)
