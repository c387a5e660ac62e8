"""The `mm15` command: curate, ingest and query the catalog; run the pipeline.

Flows are imported lazily (by module name) when a command runs one, so the library itself never
imports Prefect and read-only commands start fast.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from mm15 import paths
from mm15.errors import UserError

app = typer.Typer(
    help="mm15: the MM1.5 data-centric training recipe as a pipeline (Prefect, Parquet + DuckDB, torch, MLflow).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
)
catalog_app = typer.Typer(
    help="Query the catalog (read-only): SQL, summaries, snapshots.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(catalog_app, name="catalog")
mixture_app = typer.Typer(
    help="SFT and CPT mixtures: build manifests, show shares, generate ablation sweeps.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(mixture_app, name="mixture")
model_app = typer.Typer(
    help="The MM1.5 model: presets and architecture.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(model_app, name="model")

console = Console()
Home = Annotated[
    Path | None,
    typer.Option("--home", help="State folder (catalog, manifests, Prefect database). Default: $MM15_HOME or ./.mm15"),
]


@app.callback()
def main_options(home: Home = None) -> None:
    """Everything a run writes lives under one home folder: --home, else $MM15_HOME, else ./.mm15."""
    if home is not None:
        os.environ["MM15_HOME"] = str(home.resolve())


def _prefect_defaults() -> None:
    """Local Prefect state under MM15_HOME unless the user points at a server (PREFECT_API_URL)."""
    os.environ.setdefault("PREFECT_HOME", str(paths.home() / "prefect"))
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def run_flow(entrypoint: str, /, **parameters: Any) -> Any:
    """Run the flow at "module:function" under flows/ with these parameters."""
    _prefect_defaults()
    module, function = entrypoint.split(":")
    flow = getattr(importlib.import_module(f"flows.{module}"), function)
    return flow(**parameters)


def _table(title: str, columns: list[str], rows: list) -> Table:
    table = Table(title=title, title_justify="left")
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*("" if v is None else str(v) for v in r))
    return table


def _print_curation(result: dict, started: float) -> None:
    if not result["committed"]:
        console.print(f"Nothing new: the catalog is up to date (snapshot {result['snapshot']}).")
        return
    columns = ["source", "split", "read", "kept", "quarantined", "duplicates", "contaminated", "evicted"]
    console.print(
        _table(
            f"Snapshot {result['snapshot']}", columns, [[a[c] for c in columns] for a in result["accounting"]]
        )
    )
    if result["reject_sample"]:
        rows = [[r["reason"], f"{r['source']}:{r['key']}", r["detail"][:80]] for r in result["reject_sample"]]
        console.print(_table("Some rejects", ["reason", "where", "detail"], rows))
    console.print(f"Committed snapshot {result['snapshot']} in {time.perf_counter() - started:.1f} s.")


@app.command()
def curate(
    preset: Annotated[
        str, typer.Option(help="Synthetic data sizes (catalogs/synthetic.yaml): tiny, small.")
    ] = "tiny",
    sources: Annotated[
        bool, typer.Option(help="Also ingest the sources configured in catalogs/sources/.")
    ] = True,
) -> None:
    """Generate the synthetic sources, ingest configured sources, validate, dedup, decontaminate, and commit a
    new catalog snapshot. Reruns add only what changed; an interrupted run resumes where it stopped."""
    started = time.perf_counter()
    result = run_flow("curate:curate", preset=preset, sources=None if sources else [])
    _print_curation(result, started)


@app.command()
def ingest(
    path: Annotated[Path, typer.Argument(help="A file or a folder of files in FORMAT.")],
    format: Annotated[str, typer.Option("--format", help="llava | hf-parquet | wds-ocr | jsonl-text")],
    name: Annotated[str, typer.Option(help="Source name, the `source` column in the catalog.")],
    category: Annotated[
        str, typer.Option(help="caption ocr general text_rich refer_ground science math code ...")
    ],
    split: Annotated[
        str, typer.Option(help="train or eval (eval samples are kept out of training data).")
    ] = "train",
) -> None:
    """Add a real dataset to the catalog as source NAME and commit a snapshot. Bad records are quarantined
    with a reason (see `mm15 catalog sql "SELECT * FROM rejects"`)."""
    from mm15.catalog.plan import SourceConfig

    SourceConfig(name, format, path.resolve(), category, split).check()
    started = time.perf_counter()
    result = run_flow(
        "curate:ingest", path=str(path.resolve()), format=format, name=name, category=category, split=split
    )
    _print_curation(result, started)


@app.command()
def run(preset: Annotated[str, typer.Option(help="tiny (CPU, minutes), small, ...")] = "tiny") -> None:
    """Run the whole pipeline on PRESET: curation (then the later stages as they exist)."""
    started = time.perf_counter()
    result = run_flow("pipeline:pipeline", preset=preset)
    _print_curation(result["catalog"], started)
    _print_counts(None)
    for manifest in result["manifests"].values():
        _print_mixture(manifest["manifest"])
    console.print(f"Pipeline finished in {time.perf_counter() - started:.1f} s.")


@app.command()
def up(
    port: Annotated[int, typer.Option(help="Port of the API and UI.")] = 4200,
    host: Annotated[
        str, typer.Option(help="Interface to bind; keep 127.0.0.1 unless others must reach it.")
    ] = "127.0.0.1",
) -> None:
    """Start the Prefect server and UI on the database the mm15 commands use (MM15_HOME/prefect), so past
    and future runs show there. Then, in another shell: export PREFECT_API_URL=http://127.0.0.1:4200/api"""
    _prefect_defaults()
    prefect = Path(sys.executable).with_name("prefect")
    console.print(
        f"Prefect UI on http://{host}:{port} (Ctrl-C stops it); state in {os.environ['PREFECT_HOME']}"
    )
    os.execv(
        prefect, [str(prefect), "server", "start", "--host", host, "--port", str(port), "--analytics-off"]
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return str(value)


Snapshot = Annotated[int | None, typer.Option(help="Read this snapshot instead of the latest.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@catalog_app.command("sql")
def catalog_sql(
    query: Annotated[
        str,
        typer.Argument(
            help='One read-only statement, e.g. "SELECT category, count(*) FROM samples GROUP BY 1"'
        ),
    ],
    as_json: AsJson = False,
    snapshot: Snapshot = None,
) -> None:
    """Run a SQL query over the catalog. Tables: samples, images, rejects, ingests, shards.
    The catalog is opened read-only: statements that would change it are refused."""
    from mm15.catalog import open_catalog

    with open_catalog(snapshot=snapshot) as catalog:
        columns, rows = catalog.query(query)
    if as_json:
        typer.echo(json.dumps([dict(zip(columns, r, strict=True)) for r in rows], default=_json_default))
    else:
        console.print(
            _table("", columns, [[_json_default(v) if isinstance(v, bytes) else v for v in r] for r in rows])
        )


def _print_counts(snapshot: int | None, as_json: bool = False) -> None:
    from mm15.catalog import open_catalog

    with open_catalog(snapshot=snapshot) as catalog:
        snap = catalog.snapshot_id()
        _, counts = catalog.query(
            "SELECT category, count(*) FILTER (split = 'train'), count(*) FILTER (split = 'eval'), count(*) "
            "FROM samples GROUP BY 1 ORDER BY 1"
        )
        _, rejects = catalog.query("SELECT reason, count(*) FROM rejects GROUP BY 1 ORDER BY 2 DESC")
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "snapshot": snap,
                    "categories": {c: {"train": t, "eval": e, "total": n} for c, t, e, n in counts},
                    "rejects": dict(rejects),
                }
            )
        )
        return
    console.print(_table(f"Catalog snapshot {snap}", ["category", "train", "eval", "total"], counts))
    if rejects:
        console.print(_table("Rejects", ["reason", "rows"], rejects))


@catalog_app.command("show")
def catalog_show(snapshot: Snapshot = None, as_json: AsJson = False) -> None:
    """Samples per category and split, and rejects per reason."""
    _print_counts(snapshot, as_json)


@catalog_app.command("snapshots")
def catalog_snapshots(as_json: AsJson = False) -> None:
    """Every committed snapshot with its message and accounting totals."""
    from mm15.catalog import open_catalog

    with open_catalog() as catalog:
        snaps = catalog.snapshots()
    if as_json:
        typer.echo(json.dumps(snaps))
        return
    columns = ["read", "kept", "quarantined", "duplicates", "contaminated", "evicted"]
    rows = [[s["snapshot"], s["time"], s["message"], *(s["info"].get(c, "") for c in columns)] for s in snaps]
    console.print(_table("Snapshots", ["snapshot", "time", "message", *columns], rows))


@contextmanager
def _spec_errors() -> Iterator[None]:
    """Mixture specs report mistakes as ValueError: show them as one-line user errors."""
    try:
        yield
    except ValueError as e:
        raise UserError(str(e)) from None


def _print_mixture(manifest: str, as_json: bool = False) -> None:
    from mm15.mixture import read_summary, render_text, to_json

    summary = read_summary(Path(manifest).with_suffix(".json"))
    if as_json:
        typer.echo(json.dumps(to_json(summary)))
    else:
        typer.echo(render_text(summary))


@mixture_app.command("build")
def mixture_build(
    name: Annotated[
        str,
        typer.Argument(
            help="A mixture in catalogs/mixtures/ (all, base, single_image, cpt, ...) or a YAML path."
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

    with _spec_errors():
        spec = load_spec(name)
        with open_catalog(snapshot=snapshot) as catalog:
            check_against_catalog(spec, catalog.con)
            snapshot = catalog.snapshot_id()
        if samples < 1:
            raise UserError("--samples must be positive")
    result = run_flow("build_mixture:build_mixture", name=name, samples=samples, seed=seed, snapshot=snapshot)
    _print_mixture(result["manifest"])
    console.print(f"Manifest: {result['manifest']}")


@mixture_app.command("show")
def mixture_show(
    name: Annotated[str, typer.Argument(help="A mixture built with `mm15 mixture build`.")],
    as_json: AsJson = False,
) -> None:
    """Expected and realised shares per category and source, sample counts, repetition factors, the
    snapshot and the manifest hash of the latest build of NAME."""
    pointer = paths.manifests_dir() / name / "LATEST"
    if not pointer.exists():
        raise UserError(f"mixture {name!r} has not been built: run `mm15 mixture build {name}`")
    _print_mixture(str(pointer.parent / pointer.read_text().strip()), as_json)


@mixture_app.command("sweep")
def mixture_sweep(
    base: Annotated[str, typer.Argument(help="The mixture to vary, e.g. all.")],
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
    from mm15.mixture import load_spec, sweep_specs, write_sweep

    def values(text: str) -> list[float]:
        try:
            return [float(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise UserError(f"not a list of numbers: {text!r}") from None

    with _spec_errors():
        variants = sweep_specs(
            load_spec(base), category=category, alphas=values(alphas), group=group, weights=values(weights)
        )
        written = write_sweep(variants, out)
    from mm15.mixture import expected_shares

    rows = [
        [v.name, str(p), ", ".join(f"{c} {s:.1%}" for c, s in expected_shares(v).items())]
        for v, p in zip(variants, written, strict=True)
    ]
    console.print(_table("Variants", ["mixture", "file", "expected shares"], rows))


@model_app.command("info")
def model_info(
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
    typer.echo(json.dumps(description) if as_json else format_description(description))


def main() -> None:
    try:
        app()
    except UserError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
