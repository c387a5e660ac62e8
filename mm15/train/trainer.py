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
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from mm15 import paths
from mm15.atomic import write_text_atomic
from mm15.errors import UserError
from mm15.mixture.store import latest_manifest
from mm15.model.presets import build_model, build_processor, get_preset
from mm15.train import checkpoint as ckpt
from mm15.train.config import StageConfig, load_stage
from mm15.train.data import PackedBatches, Schedule, plan_manifest, worker_init
from mm15.train.distributed import (
    World,
    accumulating,
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
from mm15.train.metrics import (
    FlopCounter,
    MetricsLog,
    peak_flops,
    peak_memory_mb,
    plot_loss,
    segment_lengths_squared,
)
from mm15.train.optim import build_optimizer, build_scheduler
from mm15.train.packing import loss_units

PREEMPTED_EXIT = 143  # 128 + SIGTERM, what a shell reports for a process stopped by it
MODEL_INPUTS = ("input_ids", "labels", "position_ids", "sample_index", "pixel_values", "image_grids")


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


class _Preemption:
    """Remembers a SIGTERM until the step in flight has finished."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True

    def restore(self) -> None:
        signal.signal(signal.SIGTERM, self._previous)


def train(request: TrainRequest) -> dict[str, Any]:
    """Run the stage to its last step (or to a SIGTERM); returns the run's summary (also `run.json`)."""
    world = init_world(request.device)
    try:
        return _Trainer(request, world).run()
    finally:
        close_world()


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
        from transformers import AutoModelForImageTextToText, AutoProcessor

        import mm15.model  # noqa: F401  (registers the Auto classes)

        stage, preset = self.stage, get_preset(self.request.preset)
        source = self.resume_from or self.request.init
        if source:
            self.processor = AutoProcessor.from_pretrained(source)
            self.model = AutoModelForImageTextToText.from_pretrained(source, dtype=torch.float32)
        else:
            self.processor = build_processor(preset)
            torch.manual_seed(stage.seed)
            self.model = build_model(preset, self.processor)
        image_processor = self.processor.image_processor
        image_processor.split_mode = stage.split  # the stage decides how images are split
        if stage.split == "static":
            image_processor.static_grid = list(preset.static_grid)
        for part in stage.freeze:
            getattr(self.model, part).requires_grad_(False)
        if stage.gradient_checkpointing:
            self.model.gradient_checkpointing_enable()
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
        per_row = packs.samples / len(packs.rows)
        unit = stage.micro_batch * world.world_size
        self.rows_per_step = unit * max(1, math.ceil(stage.global_batch / per_row / unit))
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
            load_full_state(self.wrapped, self.optimizer, None, self.state["optimizer"])
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
        heldout_n = self.request.heldout if self.request.heldout is not None else 0
        if heldout_n and summary["heldout_before"] is None and self._scores_here():
            summary["heldout_before"] = self._heldout(heldout_n)
        tracker = self._tracker(summary) if world.main and self.request.track else None
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
        loader = DataLoader(
            PackedBatches(self.plan, self.processor, schedule),
            batch_size=None,
            num_workers=stage.workers,
            worker_init_fn=worker_init if stage.workers else None,
            prefetch_factor=4 if stage.workers else None,
            multiprocessing_context="fork" if stage.workers and sys.platform == "linux" else None,
        )
        preemption = _Preemption()
        bar = tqdm(
            total=self.total_steps,
            initial=self.start_step,
            desc=f"{stage.name} ({self.request.preset})",
            unit="step",
            disable=not (world.main and self.request.progress),
            file=sys.stderr,
        )
        peak = peak_flops(world.device)
        batches = iter(loader)
        step, status = self.start_step, "finished"
        try:
            while step < self.total_steps:
                record = self._step(batches, step, peak)
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
            metrics = [
                json.loads(line) for line in (self.out / "metrics.jsonl").read_text().splitlines() if line
            ]
            chart = plot_loss(
                metrics, self.out / "loss.png", f"{stage.name} on {self.request.preset}: training loss"
            )
            write_text_atomic(run_file, json.dumps(summary, indent=2))
            if tracker:
                self._finish_tracking(tracker, summary, chart, status)
        if status == "preempted":
            raise Preempted(step, self.out)
        return summary if world.main else {}

    def _scores_here(self) -> bool:
        """Held-out scoring runs on the main process, or on all of them when the model is sharded."""
        return self.world.main or is_sharded(self.wrapped)

    def _step(self, batches: Any, step: int, peak: float | None) -> dict[str, Any]:
        started = time.perf_counter()
        waited = 0.0
        loss_sum = units = tokens = capacity = samples = views = 0.0
        flops = 0.0
        reduction = self.model.config.loss_reduction
        device = self.world.device
        for a in range(self.accumulation):
            fetch = time.perf_counter()
            batch = next(batches)
            waited += time.perf_counter() - fetch
            n = loss_units(batch, reduction)
            inputs = {k: batch[k].to(device, non_blocking=True) for k in MODEL_INPUTS}
            with (
                accumulating(self.wrapped, sync=a == self.accumulation - 1),
                torch.autocast(
                    device.type, dtype=torch.bfloat16, enabled=device.type == "cuda" and self.stage.bf16
                ),
            ):
                loss = self.wrapped(**inputs, use_cache=False).loss * n
                loss.backward()
            loss_sum += float(loss.detach())
            units += n
            tokens += batch["tokens"]
            capacity += batch["capacity"]
            samples += batch["samples"]
            views += len(batch["pixel_values"])
            flops += self.flops.step_flops(
                batch["capacity"], segment_lengths_squared(batch["position_ids"]), len(batch["pixel_values"])
            )
        loss_sum, units, tokens, capacity, samples, views, flops = sum_across(
            [loss_sum, units, tokens, capacity, samples, views, flops], self.world
        )
        # gradients hold the sum over this process's units (averaged over processes by DDP / FSDP):
        # scale them to the mean over the whole step's units
        scale = self.world.world_size / max(units, 1.0)
        for p in self.wrapped.parameters():
            if p.grad is not None:
                p.grad.mul_(scale)
        clip = self.stage.grad_clip or float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.wrapped.parameters(), clip)
        if hasattr(grad_norm, "full_tensor"):
            grad_norm = grad_norm.full_tensor()
        lr = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - started
        return {
            "step": step + 1,
            "loss": loss_sum / max(units, 1.0),
            "lr": lr,
            "grad_norm": float(grad_norm),
            "samples": int(samples),
            "tokens_per_s": tokens / seconds,
            "tiles_per_s": views / seconds,
            "data_wait": waited / seconds,
            "packing_efficiency": tokens / max(capacity, 1.0),
            "peak_memory_mb": peak_memory_mb(device),
            "mfu": flops / seconds / (peak * self.world.world_size) if peak else None,
            "seconds": seconds,
            "epoch": (step * self.rows_per_step) // len(self.plan.packs.rows),
        }

    def _agree(self, requested: bool) -> bool:
        """Whether any process was asked to stop (all stop at the same step boundary)."""
        return bool(sum_across([float(requested)], self.world)[0])

    def _save(self, step: int) -> None:
        model_state, optim_state = full_state(self.wrapped, self.optimizer)
        if not self.world.main:
            return
        state = {
            "step": step,
            "total_steps": self.total_steps,
            "optimizer": optim_state,
            "scheduler": self.scheduler.state_dict(),
            "rng": ckpt.rng_state(),
            "data": {
                "rows_consumed": step * self.rows_per_step,
                "rows_per_step": self.rows_per_step,
                "manifest_hash": self.plan.lineage.get("manifest_hash", ""),
            },
        }
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

    def _tracker(self, summary: dict[str, Any]):
        from mm15.tracking import Run

        tags = {"mm15.stage": self.stage.name, "mm15.preset": self.request.preset}
        run = Run(
            "mm15-train",
            summary.get("mlflow_run_id"),
            name=f"{self.stage.name}-{self.request.preset}",
            tags=tags,
        )
        run.log_params(
            {
                "preset": self.request.preset,
                "stage": self.stage.name,
                "optimizer": self.stage.optimizer,
                "peak_lr": self.stage.peak_lr,
                "total_steps": self.total_steps,
                "rows_per_step": self.rows_per_step,
                "seq_len": self.stage.seq_len,
                "mixture": summary["mixture"],
                "manifest_hash": summary["manifest_hash"],
                "catalog_snapshot": summary["catalog_snapshot"],
                "world_size": self.world.world_size,
                "git_commit": run.client.get_run(run.run_id).data.tags.get("mm15.git_commit", "unknown"),
                "init": summary["init"] or "",
            }
        )
        if summary.get("heldout_before"):
            run.log_metrics({f"heldout_before/{k}": v for k, v in summary["heldout_before"].items()}, 0)
        return run

    def _finish_tracking(
        self, tracker: Any, summary: dict[str, Any], chart: Path | None, status: str
    ) -> None:
        if summary.get("heldout_after"):
            tracker.log_metrics(
                {f"heldout_after/{k}": v for k, v in summary["heldout_after"].items()}, summary["step"]
            )
        if chart:
            tracker.log_artifact(chart)
        tracker.log_artifact(self.out / "run.json")
        tracker.finish("FINISHED" if status == "finished" else "KILLED")


class Preempted(Exception):
    """Training stopped at a step boundary on SIGTERM, after saving a checkpoint."""

    def __init__(self, step: int, out: Path):
        super().__init__(
            f"stopped by SIGTERM after step {step}; checkpoint-{step} saved in {out}: "
            "rerun with --resume to continue"
        )
        self.step = step
