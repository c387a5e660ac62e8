"""`mm15 train`: one training stage (CPT or SFT) on a mixture manifest, resumable, on one or many devices."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from mm15.cli.output import print_table, say


def train(
    stage: Annotated[str, typer.Option(help="cpt or sft (catalogs/stages/STAGE.yaml).")],
    out: Annotated[
        Path | None,
        typer.Option(
            help="Run folder: checkpoint-<step>/, metrics.jsonl, run.json, loss.png (not with --flow)."
        ),
    ] = None,
    preset: Annotated[str, typer.Option(help="Model preset: tiny, tiny-moe, 1b, 3b.")] = "tiny",
    mixture: Annotated[
        str | None, typer.Option(help="Train on this mixture's latest manifest (default: the stage's).")
    ] = None,
    manifest: Annotated[Path | None, typer.Option(help="Train on this manifest file instead.")] = None,
    init: Annotated[
        Path | None,
        typer.Option(help="Start from this checkpoint folder (e.g. CPT's last) instead of the preset."),
    ] = None,
    max_steps: Annotated[
        int | None, typer.Option(min=1, help="Exactly N optimizer steps (wrapping the manifest if shorter).")
    ] = None,
    save_every: Annotated[
        int | None, typer.Option(min=1, help="Steps between checkpoints (the last always saves).")
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue from the newest complete checkpoint in --out.")
    ] = False,
    device: Annotated[str | None, typer.Option(help="cpu or cuda (default: cuda when present).")] = None,
    strategy: Annotated[
        str, typer.Option(help="With torchrun: ddp or fsdp (FSDP2, for the larger presets).")
    ] = "ddp",
    heldout: Annotated[
        int,
        typer.Option(min=0, help="Held-out loss on N eval samples per category, before and after (0: skip)."),
    ] = 0,
    track: Annotated[
        bool, typer.Option(help="Log to MLflow ($MLFLOW_TRACKING_URI, else MM15_HOME/mlflow.db).")
    ] = True,
    overrides: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="FIELD=VALUE",
            help="Change a stage field for this run, e.g. --set seq_len=512 (repeatable).",
        ),
    ] = None,
    flow: Annotated[
        bool,
        typer.Option(
            "--flow",
            help="Run the stage's Prefect flow (continual-pretrain or sft) instead: a run folder named by the "
            "inputs under MM15_HOME/runs/, a `gpu` concurrency slot, a progress artifact.",
        ),
    ] = False,
) -> None:
    """Train one stage. CPT: the OCR mixture with static 2x2 + overview tiles; SFT: an SFT mixture with
    dynamic tiles, one epoch. Samples are packed into rows with per-sample attention; every step goes to
    metrics.jsonl (and MLflow). SIGTERM saves a checkpoint at the next step boundary and exits with 143.

    Several processes: torchrun --nproc_per_node N -m mm15.cli train ... (gloo on CPUs, NCCL on GPUs)."""
    from mm15.errors import UserError
    from mm15.train.preemption import PREEMPTED_EXIT, Preempted
    from mm15.train.trainer import TrainRequest
    from mm15.train.trainer import train as run_training

    if strategy not in ("ddp", "fsdp"):
        raise UserError(f"--strategy must be ddp or fsdp, got {strategy!r}")
    if flow:
        print_summary(
            run_stage_flow(stage, preset, mixture, init, max_steps, heldout, parse_overrides(overrides or []))
        )
        return
    if out is None:
        raise UserError("--out is required (the run folder), unless --flow")
    request = TrainRequest(
        overrides=parse_overrides(overrides or []),
        stage=stage,
        preset=preset,
        out=out,
        mixture=mixture,
        manifest=manifest,
        init=init,
        max_steps=max_steps,
        save_every=save_every,
        resume=resume,
        device=device,
        strategy=strategy,
        track=track,
        heldout=heldout,
    )
    try:
        result = run_training(request)
    except Preempted as stopped:
        say(str(stopped))
        sys.exit(PREEMPTED_EXIT)
    if result:  # other processes of a torchrun return nothing
        print_summary(result)


def run_stage_flow(
    stage: str,
    preset: str,
    mixture: str | None,
    init: Path | None,
    max_steps: int | None,
    heldout: int,
    overrides: dict,
) -> dict:
    from mm15.cli.orchestration import run_flow, use_local_prefect
    from mm15.errors import UserError

    if overrides:
        raise UserError("--set is not available with --flow: change the stage file instead")
    use_local_prefect()
    common = {"preset": preset, "max_steps": max_steps, "heldout": heldout}
    if mixture:
        common["mixture"] = mixture
    if stage == "cpt":
        from flows.continual_pretrain import continual_pretrain

        return run_flow(continual_pretrain, **common)
    if stage == "sft":
        from flows.sft import sft

        return run_flow(sft, init=str(init) if init else None, **common)
    raise UserError(f"--flow runs the cpt or sft stage, not {stage!r}")


def parse_overrides(pairs: list[str]) -> dict:
    """`FIELD=VALUE` pairs (values read as YAML: numbers, booleans, lists) -> a dict."""
    import yaml

    from mm15.errors import UserError

    out = {}
    for pair in pairs:
        field, sep, value = pair.partition("=")
        if not sep or not field.strip():
            raise UserError(f"--set takes FIELD=VALUE, got {pair!r}")
        out[field.strip()] = yaml.safe_load(value)
    return out


def print_summary(result: dict) -> None:
    rows = [
        [
            "steps",
            f"{result['step']} of {result['total_steps']} ({result['rows_per_step']} packed rows each)",
        ],
        [
            "packing",
            f"{result['packing_efficiency']:.1%} of row tokens are real, {result['samples_per_row']} samples per row",
        ],
        [
            "data",
            f"{result['mixture']} sha256 {result['manifest_hash'][:12]}, catalog snapshot {result['catalog_snapshot']}",
        ],
        ["checkpoint", result["last_checkpoint"]],
    ]
    before, after = result.get("heldout_before") or {}, result.get("heldout_after") or {}
    for category in sorted(after):
        rows.append(
            [f"held-out {category}", f"{before.get(category, float('nan')):.3f} -> {after[category]:.3f}"]
        )
    print_table(f"{result['stage']} on {result['preset']}: {result['status']}", ["", ""], rows)
