"""`mm15 eval`: score a model on the benchmarks (catalogs/benchmarks/*.yaml): per benchmark, per category, MMBase."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from mm15.cli.options import AsJson, Snapshot
from mm15.cli.output import print_json, print_table, say


def evaluate(
    model: Annotated[
        str,
        typer.Option(
            help="A checkpoint folder, a models:/NAME@ALIAS URI, or preset:NAME (untrained weights)."
        ),
    ],
    benchmarks: Annotated[
        str | None,
        typer.Option(help="Comma-separated benchmark names or YAML files (default: all built-in)."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Score the first N samples of each benchmark.")
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Prompts decoded together (scores do not depend on it).")
    ] = 8,
    predictions: Annotated[
        Path | None, typer.Option(help="Write the predictions JSONL here (default: beside the report).")
    ] = None,
    baseline: Annotated[
        str | None, typer.Option(help="Also score this model and report the deltas (e.g. preset:tiny).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Report folder (default: MM15_HOME/evals/<model>-<hash>).")
    ] = None,
    snapshot: Snapshot = None,
    track: Annotated[
        bool, typer.Option(help="Log to MLflow ($MLFLOW_TRACKING_URI, else MM15_HOME/mlflow.db).")
    ] = True,
    device: Annotated[str | None, typer.Option(help="cpu or cuda (default: cuda when present).")] = None,
    as_json: AsJson = False,
    flow: Annotated[
        bool,
        typer.Option("--flow", help="Run as the Prefect flow `evaluate` (report and scores as artifacts)."),
    ] = False,
) -> None:
    """Score MODEL with batched greedy decoding (KV cache) on each benchmark; print per-benchmark scores,
    category averages and MMBase (the mean of the general, text_rich and knowledge averages), all 0-100.
    The report (report.md, report.json, scores.png) and the predictions (one JSON line per sample:
    benchmark, sample_id, prompt, prediction, references, score) go to the report folder. With --json,
    stdout holds only {"benchmarks", "categories", "mmbase"}; progress goes to stderr."""
    from tqdm import tqdm

    from mm15.eval.benchmarks import load_benchmarks
    from mm15.eval.generate import load_model
    from mm15.eval.report import track as track_run
    from mm15.eval.report import write_report
    from mm15.eval.runner import default_out
    from mm15.eval.runner import evaluate as run_evaluation

    names = [n.strip() for n in benchmarks.split(",") if n.strip()] if benchmarks else None
    configs = load_benchmarks(names)
    if flow:
        from mm15.cli.orchestration import run_flow, use_local_prefect

        use_local_prefect()
        from flows.evaluate import evaluate as evaluate_flow

        summary = run_flow(
            evaluate_flow,
            model=model,
            benchmarks=names,
            limit=limit,
            batch_size=batch_size,
            baseline=baseline,
            snapshot=snapshot,
        )
        if as_json:
            print_json({k: summary[k] for k in ("benchmarks", "categories", "mmbase")})
        else:
            say(f"Report: {summary['paths']['markdown']}")
        return
    folder = out or default_out(model, [b.name for b in configs], limit, snapshot)
    results = []
    for spec in [model, *([baseline] if baseline else [])]:
        loaded = load_model(spec, device)
        with tqdm(desc=f"eval {spec}", unit="sample", file=sys.stderr, disable=None) as bar:
            results.append(run_evaluation(loaded, configs, None, snapshot, limit, batch_size, bar.update))
    result, base = results[0], (results[1] if baseline else None)
    paths = write_report(result, folder, base, predictions)
    if track:
        track_run(result, paths, base)
    for name, bad in sorted(result.malformed.items()):
        reasons = "; ".join(sorted({b["reason"] for b in bad}))
        typer.echo(f"{name}: {len(bad)} malformed rows not scored ({reasons})", err=as_json)
    if as_json:
        print_json(result.to_json())
        return
    print_scores(result, base)
    say(f"Report: {paths['markdown']}  chart: {paths['chart']}  predictions: {paths['predictions']}")


def print_scores(result, baseline=None) -> None:
    head = ["", "score"] + (["baseline", "delta"] if baseline else [])

    def row(name, value, base):
        cells = [name, "n/a" if value is None else f"{value:.2f}"]
        if baseline:
            cells += [
                "n/a" if base is None else f"{base:.2f}",
                "" if value is None or base is None else f"{value - base:+.2f}",
            ]
        return cells

    rows = [
        row(f"{n} ({result.counts[n]})", v, baseline and baseline.benchmarks.get(n))
        for n, v in sorted(result.benchmarks.items())
    ]
    rows += [
        row(f"category {k}", v, baseline and baseline.categories.get(k)) for k, v in result.categories.items()
    ]
    rows.append(row("MMBase", result.mmbase, baseline.mmbase if baseline else None))
    print_table(f"Evaluation of {result.model}", head, rows)
