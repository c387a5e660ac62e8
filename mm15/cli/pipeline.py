"""`mm15 run`: the whole pipeline, then what it produced and where."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from mm15 import paths
from mm15.atomic import write_text_atomic
from mm15.cli.catalog import catalog_summary, print_summary
from mm15.cli.curate import print_curation
from mm15.cli.mixture import print_mixture
from mm15.cli.orchestration import Timing, run_flow_timed, use_local_prefect
from mm15.cli.output import print_table, say


def _shown(path: str | Path) -> str:
    """A path relative to the working directory when it lies below it."""
    path = Path(path)
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def print_run_summary(result: dict, timing: Timing, seconds: float) -> None:
    """What the run produced and where, and the commands that look further."""
    from mm15.mixture import read_summary
    from mm15.tracking import tracking_uri

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
    for stage in ("cpt", "sft"):
        if trained := result.get(stage):
            rows.append(
                [
                    f"training {stage}",
                    f"{trained['step']} steps, {trained['packing_efficiency']:.1%} packed",
                    _shown(trained["last_checkpoint"]),
                ]
            )
    if evaluation := result.get("evaluation"):
        rows.append(
            ["evaluation", f"MMBase {evaluation['mmbase']:.2f}", _shown(evaluation["paths"]["markdown"])]
        )
    if model := result.get("model"):
        decision = model["decision"]
        alias = "champion" if decision["promoted"] else "challenger"
        rows.append(
            [
                "model",
                f"{model['name']} version {model['version']} @{alias}",
                f"models:/{model['name']}@{alias}",
            ]
        )
    print_table(f"Pipeline finished in {seconds:.1f} s", ["what", "", "where"], rows)
    if model:
        say(f"Gate: {decision['reason']}")
    say(_overhead_line(timing, seconds))
    say(f"MLflow store: {tracking_uri()}")
    say("Look further: `mm15 models list`, `mm15 eval --model models:/mm15-<preset>@champion`,")
    say('`mm15 catalog show`, `mm15 mixture show all`, `mm15 catalog sql "..."`, and `mm15 up` for the')
    say("Prefect and MLflow UIs.")


def run(
    preset: Annotated[str, typer.Option(help="tiny (CPU, minutes), small, ...")] = "tiny",
    eval_limit: Annotated[
        int, typer.Option(help="Samples per benchmark scored before and after training (0: all).")
    ] = 32,
) -> None:
    """Run the whole pipeline on PRESET: curation, the CPT and SFT mixture manifests, continual pretraining,
    SFT from CPT's last checkpoint, evaluation against the untrained model, registration in MLflow as
    mm15-PRESET and the promotion gate. Stages whose inputs did not change are reused. Ends with the
    held-out loss and the scores per category before and after training, the model version and its alias,
    the time per stage and Prefect's share of it (also in MM15_HOME/pipeline/last-run.json)."""
    started = time.perf_counter()
    from mm15.catalog.plan import synthetic_shards
    from mm15.catalog.sources import configured_sources

    synthetic_shards(preset)  # a bad preset or config fails here, before any flow starts
    configured_sources()
    use_local_prefect()
    from flows.pipeline import pipeline

    result, timing = run_flow_timed(pipeline, preset=preset, eval_limit=eval_limit or None)
    seconds = time.perf_counter() - started
    print_curation(result["catalog"], time.perf_counter() - dict(timing.stages).get("curate", 0.0))
    print_summary(catalog_summary(result["catalog"]["snapshot"]))
    for built in result["manifests"].values():
        print_mixture(built["manifest"])
    print_heldout(result)
    print_scores(result.get("evaluation") or {})
    print_timing(timing)
    record = _record(result, timing, seconds)
    write_text_atomic(paths.home() / "pipeline" / "last-run.json", json.dumps(record, indent=2))
    print_run_summary(result, timing, seconds)


def print_scores(evaluation: dict) -> None:
    """Scores per category and MMBase (0-100), untrained and trained."""
    if not evaluation:
        return
    base = evaluation.get("baseline") or {}
    rows = [
        [k, _score(base.get("categories", {}).get(k)), _score(v)] for k, v in evaluation["categories"].items()
    ]
    rows.append(["MMBase", _score(base.get("mmbase")), _score(evaluation["mmbase"])])
    print_table("Scores per category (0-100, higher is better)", ["category", "untrained", "trained"], rows)


def print_timing(timing: Timing) -> None:
    rows = [[name, f"{seconds:.1f}"] for name, seconds in timing.stages]
    rows.append(["Prefect's overhead (API start-up, scheduling, states)", f"{timing.overhead:.1f}"])
    print_table(f"Time per stage (s), {timing.wall:.1f} s in all", ["stage", "seconds"], rows)


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _record(result: dict, timing: Timing, seconds: float) -> dict:
    """What last-run.json keeps: the timing and the outcome."""
    evaluation, model = result.get("evaluation") or {}, result.get("model") or {}
    return {
        "wall_seconds": round(seconds, 2),
        "prefect_overhead_seconds": round(timing.overhead, 2),
        "prefect_overhead_share": round(timing.overhead / seconds, 4),
        "api_start_seconds": round(timing.api_start, 2),
        "api_wait_seconds": round(timing.api_wait, 2),
        "in_tasks_seconds": round(timing.in_tasks, 2),
        "stages": [{"stage": n, "seconds": round(s, 2)} for n, s in timing.stages],
        "scores": {"categories": evaluation.get("categories"), "mmbase": evaluation.get("mmbase")},
        "baseline": (evaluation.get("baseline") or {}).get("categories"),
        "model": {k: model.get(k) for k in ("name", "version")} | {"decision": model.get("decision")},
    }


def _overhead_line(timing: Timing, seconds: float) -> str:
    return (
        f"Prefect's overhead: {timing.overhead:.1f} s of {seconds:.1f} s ({timing.overhead / seconds:.1%}): "
        f"{timing.api_wait:.1f} s waiting for the temporary API (its start-up took {timing.api_start:.1f} s, "
        f"the rest overlapped with loading the code), {timing.overhead - timing.api_wait:.1f} s creating "
        "runs and moving states between the tasks."
    )


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
