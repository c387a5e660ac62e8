"""The trainer: one stage (CPT or SFT) over a mixture manifest, on one CPU or many GPUs, resumable.

    result = train(TrainRequest(stage="sft", preset="tiny", out=Path("runs/sft"), init=cpt_checkpoint))

Each optimizer step reads a fixed number of packed rows (the plan's mean samples per row decides how
many make the stage's `global_batch` samples), split into micro-batches over gradient accumulation
and processes. The loss of a step is the mean over its samples of their mean token loss, whatever
the split: gradients are summed unnormalised and divided by the step's sample count at the end, so
one process and several give the same step.

SIGTERM (preemption) lets the current step finish, saves `checkpoint-<step>` and exits with code 143.
`resume=True` continues from the newest complete checkpoint; the data schedule, optimizer, scheduler
and RNG states restore exactly, so the resumed run repeats the uninterrupted one step for step.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from mm15 import paths
from mm15.atomic import write_text_atomic
from mm15.errors import UserError
from mm15.mixture.store import latest_manifest
from mm15.model.presets import get_preset
from mm15.train import checkpoint as ckpt
from mm15.train.config import StageConfig, load_stage
from mm15.train.data import PackedBatches, Schedule, plan_manifest, step_rows, training_loader
from mm15.train.distributed import (
    World,
    close_world,
    full_state,
    init_world,
    is_sharded,
    load_full_state,
    sum_across,
    unwrap,
    wrap,
)
from mm15.train.heldout import heldout_losses
from mm15.train.metrics import FlopCounter, MetricsLog, peak_flops, plot_loss, read_metrics
from mm15.train.optim import build_optimizer, build_scheduler
from mm15.train.preemption import Preempted, PreemptionGuard
from mm15.train.step import Stepper
from mm15.train.tracking import finish_tracking, start_tracking


@dataclass
class TrainRequest:
    """What `mm15 train` asks for; `overrides` change stage fields (e.g. {"seq_len": 512})."""

    stage: str
    preset: str
    out: Path
    mixture: str | None = None
    manifest: Path | None = None
    init: Path | None = None
    max_steps: int | None = None
    save_every: int | None = None
    resume: bool = False
    device: str | None = None
    strategy: str = "ddp"
    track: bool = True
    progress: bool = True
    heldout: int | None = None
    overrides: dict[str, Any] = field(default_factory=dict)


def train(request: TrainRequest) -> dict[str, Any]:
    """Run the stage to its last step (or to a SIGTERM); returns the run's summary (also `run.json`)."""
    world = init_world(request.device)
    try:
        summary = _Trainer(request, world).run()
    except BaseException:
        close_world(wait_for_peers=False)  # a peer may never reach the barrier
        raise
    close_world()
    return summary


class _Trainer:
    def __init__(self, request: TrainRequest, world: World):
        self.request, self.world = request, world
        changes = dict(request.overrides) | ({"save_every": request.save_every} if request.save_every else {})
        self.stage: StageConfig = load_stage(request.stage, request.preset).with_overrides(**changes)
        self.out = Path(request.out).resolve()
        self.out.mkdir(parents=True, exist_ok=True)
        ckpt.remove_partial(self.out) if world.main else None
        self.resume_from = ckpt.latest_checkpoint(self.out) if request.resume else None
        self.state = ckpt.load_training_state(self.resume_from) if self.resume_from else None
        self._build_model()
        self._plan()

    # -- set-up ------------------------------------------------------------------------------------

    def _build_model(self) -> None:
        stage = self.stage
        source = self.resume_from or self.request.init
        self.processor, self.model = ckpt.load_for_training(get_preset(self.request.preset), stage, source)
        self.model.to(self.world.device).train()
        self.flops = FlopCounter.of(self.model)
        self.wrapped = wrap(self.model, self.world, self.request.strategy)
        self.optimizer = build_optimizer(stage, self.wrapped.parameters(), is_sharded(self.wrapped))

    def _plan(self) -> None:
        stage, world = self.stage, self.world
        manifest = self.request.manifest or latest_manifest(
            paths.manifests_dir(), self.request.mixture or stage.mixture
        )
        self.plan = plan_manifest(manifest, self.processor, stage.seq_len, stage.max_views)
        packs = self.plan.packs
        if not packs.rows:
            raise UserError(f"manifest {manifest} packs into no rows: is it empty?")
        unit = stage.micro_batch * world.world_size
        self.rows_per_step = step_rows(packs, stage.global_batch, unit)
        self.accumulation = self.rows_per_step // unit
        epoch_steps = math.ceil(len(packs.rows) / self.rows_per_step)
        self.total_steps = self.request.max_steps or stage.max_steps or epoch_steps
        if self.state and self.state["total_steps"] != self.total_steps:
            raise UserError(
                f"{self.resume_from} belongs to a run of {self.state['total_steps']} steps, not {self.total_steps}: "
                "resume with the same settings"
            )
        self.scheduler = build_scheduler(self.optimizer, stage.warmup_steps, self.total_steps)
        self.start_step = 0
        if self.state:
            load_full_state(self.wrapped, self.optimizer, self.state["optimizer"])
            self.scheduler.load_state_dict(self.state["scheduler"])
            ckpt.set_rng_state(self.state["rng"])
            self.start_step = int(self.state["step"])

    def describe(self) -> dict[str, Any]:
        packs = self.plan.packs
        return {
            "stage": self.stage.name,
            "preset": self.request.preset,
            "stage_config": self.stage.model_dump(),
            "manifest": str(self.plan.manifest),
            "mixture": self.plan.lineage.get("mixture", ""),
            "manifest_hash": self.plan.lineage.get("manifest_hash", ""),
            "catalog_snapshot": self.plan.snapshot,
            "init": str(self.request.init) if self.request.init else None,
            "world_size": self.world.world_size,
            "strategy": self.request.strategy if self.world.distributed else "single",
            "device": str(self.world.device),
            "total_steps": self.total_steps,
            "rows_per_step": self.rows_per_step,
            "accumulation": self.accumulation,
            "packed_rows": len(packs.rows),
            "packing_efficiency": round(packs.efficiency, 4),
            "samples_per_row": round(packs.samples / len(packs.rows), 3),
            "too_long": len(packs.too_long),
        }

    # -- the loop ----------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        world, stage = self.world, self.stage
        summary = self.describe()
        run_file = self.out / "run.json"
        previous = json.loads(run_file.read_text()) if self.state and run_file.exists() else {}
        summary["mlflow_run_id"] = previous.get("mlflow_run_id")
        summary["heldout_before"] = previous.get("heldout_before")
        heldout_n = self.request.heldout or 0
        if heldout_n and summary["heldout_before"] is None and self._scores_here():
            summary["heldout_before"] = self._heldout(heldout_n)
        tracker = (
            start_tracking(summary, self.request.preset, self.stage.name)
            if world.main and self.request.track
            else None
        )
        if tracker:
            summary["mlflow_run_id"] = tracker.run_id
        if world.main:
            write_text_atomic(run_file, json.dumps(summary, indent=2))
        log = (
            MetricsLog(self.out / "metrics.jsonl", self.start_step if self.state else None)
            if world.main
            else None
        )

        schedule = Schedule(
            stage.micro_batch,
            self.accumulation,
            world.world_size,
            world.rank,
            self.start_step,
            self.total_steps,
        )
        loader = training_loader(PackedBatches(self.plan, self.processor, schedule), stage.workers)
        preemption = PreemptionGuard()
        bar = tqdm(
            total=self.total_steps,
            initial=self.start_step,
            desc=f"{stage.name} ({self.request.preset})",
            unit="step",
            disable=not (world.main and self.request.progress),
            file=sys.stderr,
        )
        stepper = Stepper(
            self.wrapped,
            self.optimizer,
            self.scheduler,
            stage,
            world,
            self.accumulation,
            self.flops,
            peak_flops(world.device),
        )
        batches = iter(loader)
        step, status = self.start_step, "finished"
        try:
            while step < self.total_steps:
                record = stepper(batches, step) | {
                    "epoch": step * self.rows_per_step // len(self.plan.packs.rows)
                }
                step += 1
                if log:
                    log.write(record)
                if tracker:
                    tracker.log_metrics({k: v for k, v in record.items() if k != "step"}, step)
                    if step % 20 == 0:
                        tracker.flush()
                bar.update(1)
                bar.set_postfix(loss=f"{record['loss']:.3f}", lr=f"{record['lr']:.2e}")
                last = step == self.total_steps
                stop = self._agree(preemption.requested)
                if last or stop or step % stage.save_every == 0:
                    self._save(step)
                if stop and not last:
                    status = "preempted"
                    break
        finally:
            bar.close()
            preemption.restore()
            del batches
        summary.update(step=step, status=status, last_checkpoint=str(self.out / f"checkpoint-{step}"))
        if status == "finished" and heldout_n and self._scores_here():
            summary["heldout_after"] = self._heldout(heldout_n)
        if world.main:
            title = f"{stage.name} on {self.request.preset}: training loss"
            chart = plot_loss(read_metrics(self.out / "metrics.jsonl"), self.out / "loss.png", title)
            write_text_atomic(run_file, json.dumps(summary, indent=2))
            if tracker:
                finish_tracking(tracker, summary, chart, run_file, status)
        if status == "preempted":
            raise Preempted(step, self.out)
        return summary if world.main else {}

    def _scores_here(self) -> bool:
        """Held-out scoring runs on the main process, or on all of them when the model is sharded."""
        return self.world.main or is_sharded(self.wrapped)

    def _agree(self, requested: bool) -> bool:
        """Whether any process was asked to stop (all stop at the same step boundary)."""
        return bool(sum_across([float(requested)], self.world)[0])

    def _save(self, step: int) -> None:
        model_state, optim_state = full_state(self.wrapped, self.optimizer)
        if not self.world.main:
            return
        state = ckpt.training_state(
            step,
            self.total_steps,
            optim_state,
            self.scheduler,
            self.rows_per_step,
            self.plan.lineage.get("manifest_hash", ""),
        )
        ckpt.save_checkpoint(
            self.out,
            step,
            unwrap(self.wrapped),
            self.processor,
            state,
            self.stage.keep_checkpoints,
            model_state if is_sharded(self.wrapped) else None,
        )

    def _heldout(self, per_category: int) -> dict[str, float]:
        losses = heldout_losses(
            unwrap(self.wrapped),
            self.processor,
            self.plan.catalog_dir,
            self.plan.snapshot,
            per_category,
            self.stage.seq_len,
            self.stage.micro_batch * 2,
        )
        return {k: round(v, 4) for k, v in losses.items()}
