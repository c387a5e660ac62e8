"""`mm15 run` (the whole pipeline) and `mm15 up` (the Prefect UI over the runs' database)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from mm15 import paths
from mm15.cli.catalog import catalog_summary, print_summary
from mm15.cli.curate import print_curation
from mm15.cli.mixture import print_mixture
from mm15.cli.orchestration import run_flow, use_local_prefect
from mm15.cli.output import print_table, say


def _shown(path: str | Path) -> str:
    """A path relative to the working directory when it lies below it."""
    path = Path(path)
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def print_run_summary(result: dict, seconds: float) -> None:
    """What the run produced and where, and the commands that look further."""
    from mm15.mixture import read_summary

    catalog = catalog_summary(result["catalog"]["snapshot"])
    counts = catalog["categories"].values()
    train, evals = sum(c["train"] for c in counts), sum(c["eval"] for c in counts)
    rows = [
        [
            "catalog",
            f"snapshot {catalog['snapshot']}: {train:,} train + {evals:,} eval samples",
            _shown(paths.catalog_dir()),
        ]
    ]
    for name, built in result["manifests"].items():
        summary = read_summary(Path(built["manifest"]))
        rows.append(
            [
                f"mixture {name}",
                f"{summary.samples:,} samples, sha256 {summary.manifest_hash[:12]}",
                _shown(built["manifest"]),
            ]
        )
        chart = Path(built["manifest"]).with_suffix(".png")
        if chart.exists():
            rows.append([f"chart {name}", "expected vs realised shares", _shown(chart)])
    for stage in ("cpt", "sft"):
        if trained := result.get(stage):
            rows.append(
                [
                    f"training {stage}",
                    f"{trained['step']} steps, {trained['packing_efficiency']:.1%} packed",
                    _shown(trained["last_checkpoint"]),
                ]
            )
    print_table(f"Pipeline finished in {seconds:.1f} s", ["what", "", "where"], rows)
    say('Look further: `mm15 catalog show`, `mm15 mixture show all`, `mm15 catalog sql "..."`, and')
    say("`mm15 up` for the Prefect UI of these runs on http://127.0.0.1:4200.")


def run(preset: Annotated[str, typer.Option(help="tiny (CPU, minutes), small, ...")] = "tiny") -> None:
    """Run the whole pipeline on PRESET: curation, the CPT and SFT mixture manifests, continual pretraining,
    then SFT from CPT's last checkpoint. Ends with the held-out loss per category before and after
    training, and a summary of what was produced and where."""
    from mm15.catalog.plan import synthetic_shards
    from mm15.catalog.sources import configured_sources

    synthetic_shards(preset)  # a bad preset or config fails here, before any flow starts
    configured_sources()
    started = time.perf_counter()
    use_local_prefect()
    from flows.pipeline import pipeline

    result = run_flow(pipeline, preset=preset)
    print_curation(result["catalog"], started)
    print_summary(catalog_summary(result["catalog"]["snapshot"]))
    for built in result["manifests"].values():
        print_mixture(built["manifest"])
    print_heldout(result)
    print_run_summary(result, time.perf_counter() - started)


def print_heldout(result: dict) -> None:
    """Held-out loss per category: untrained, after CPT, after SFT."""
    cpt, tuned = result.get("cpt") or {}, result.get("sft") or {}
    before = cpt.get("heldout_before") or {}
    after_cpt, after_sft = cpt.get("heldout_after") or {}, tuned.get("heldout_after") or {}
    if not (before and after_sft):
        return
    rows = [
        [c, f"{before[c]:.3f}", f"{after_cpt.get(c, float('nan')):.3f}", f"{after_sft[c]:.3f}"]
        for c in sorted(after_sft)
    ]
    print_table(
        "Held-out loss per category (lower is better)",
        ["category", "untrained", "after CPT", "after SFT"],
        rows,
    )


def up(
    port: Annotated[int, typer.Option(help="Port of the API and UI.")] = 4200,
    host: Annotated[
        str, typer.Option(help="Interface to bind; keep 127.0.0.1 unless others must reach it.")
    ] = "127.0.0.1",
) -> None:
    """Start the Prefect server and UI on the database the mm15 commands use (MM15_HOME/prefect), so past
    and future runs show there. Then, in another shell: export PREFECT_API_URL=http://127.0.0.1:4200/api"""
    use_local_prefect()
    prefect = Path(sys.executable).with_name("prefect")
    say(f"Prefect UI on http://{host}:{port} (Ctrl-C stops it); state in {os.environ['PREFECT_HOME']}")
    os.execv(
        prefect, [str(prefect), "server", "start", "--host", host, "--port", str(port), "--analytics-off"]
    )
