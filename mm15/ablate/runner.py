"""Running a study: every arm on every seed, trained and scored, cheaply and resumably.

Each (arm, seed) cell is a mixture manifest, an SFT run and an evaluation; arms with CPT start from a CPT
checkpoint of their level. All of these are cached by their inputs: manifests by spec, snapshot and seed;
run folders by `StageRun`'s key (`MM15_HOME/runs/`); evaluations by model and question
(`MM15_HOME/evals/`). So arms that match across studies train once, and a study stopped midway resumes
where it stopped (a half-trained run resumes from its newest checkpoint). Cells run as subprocesses,
`jobs` at a time with the cores split between them (one thread each on a 2-core machine trains two
tiny runs faster than two threads on one).

Seeds: seed S builds the arm's manifest with seed S and trains SFT with seed S (initial weights when
there is no CPT, and the draw order); CPT checkpoints are shared by the seeds (seed 0).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from mm15 import paths
from mm15.ablate.study import ArmPlan, Study
from mm15.atomic import write_text_atomic
from mm15.catalog.lake import open_catalog
from mm15.errors import UserError
from mm15.eval.report import read_result
from mm15.eval.runner import default_out
from mm15.mixture.build import build_manifest
from mm15.mixture.spec import MixtureSpec, load_spec, spec_to_dict
from mm15.mixture.store import manifest_path
from mm15.train.config import load_stage
from mm15.train.runs import StageRun

CPT_SPLIT = {"low": "none", "high": "static"}  # the paper's 378 px (one view) vs 1344 px (2x2 + overview)


@dataclasses.dataclass(frozen=True)
class Cell:
    arm: str
    seed: int
    plan: ArmPlan


@dataclasses.dataclass
class CellResult:
    arm: str
    seed: int
    categories: dict[str, float]
    mmbase: float | None
    checkpoint: str
    seconds: float  # 0 when everything came from the caches


def run_cells(
    study: Study,
    seeds: list[int],
    home: Path,
    jobs: int | None = None,
    done: Callable[[CellResult], None] | None = None,
) -> list[CellResult]:
    """Train and score every arm of `study` on every seed (from the caches where they hold it)."""
    catalog = paths.catalog_dir(home)
    if not catalog.exists():
        raise UserError(f"no catalog in {home}: run `mm15 curate` (or `mm15 run`) first")
    with open_catalog(catalog) as lake:
        snapshot = lake.snapshot_id()
    cells = [Cell(arm, seed, plan) for arm, plan in study.arms.items() for seed in seeds]
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(cells)))
    threads = max(1, (os.cpu_count() or 1) // jobs)
    runner = _Runner(home, snapshot, threads)
    levels = sorted({c.plan.cpt for c in cells} - {"none"})
    presets = sorted({c.plan.preset for c in cells})
    with ThreadPoolExecutor(jobs) as pool:
        pairs = [(p, level) for p in presets for level in levels]
        inits = dict(zip(pairs, pool.map(lambda pair: runner.cpt(*pair), pairs), strict=True))

        def one(cell: Cell) -> CellResult:
            init = inits.get((cell.plan.preset, cell.plan.cpt))
            result = runner.cell(cell, init)
            if done:
                done(result)
            return result

        return list(pool.map(one, cells))


class _Runner:
    def __init__(self, home: Path, snapshot: int, threads: int):
        self.home, self.snapshot = Path(home), snapshot
        self.env = {
            **os.environ,
            "MM15_HOME": str(self.home),
            "OMP_NUM_THREADS": str(threads),
            "MKL_NUM_THREADS": str(threads),
        }

    def manifest(self, spec: MixtureSpec, seed: int, samples: int) -> Path:
        out = manifest_path(paths.manifests_dir(self.home), spec.name, self.snapshot, seed, samples)
        if not out.is_file():
            folder = self.home / "ablations" / "mixtures"
            folder.mkdir(parents=True, exist_ok=True)
            write_text_atomic(
                folder / f"{spec.name}.yaml", yaml.safe_dump(spec_to_dict(spec), sort_keys=False)
            )
            with open_catalog(paths.catalog_dir(self.home), snapshot=self.snapshot) as lake:
                build_manifest(lake.con, spec, samples=samples, seed=seed, snapshot=self.snapshot, out=out)
        return out

    def cpt(self, preset: str, level: str) -> str:
        """The last checkpoint of CPT at `level` (trained on first use)."""
        stage = load_stage("cpt", preset)
        manifest = self.manifest(load_spec(stage.mixture), 0, _samples(stage.max_steps, stage.global_batch))
        run = StageRun("cpt", preset, manifest=str(manifest), overrides={"split": CPT_SPLIT[level]})
        return self.train(run)

    def cell(self, cell: Cell, init: str | None) -> CellResult:
        start = time.monotonic()
        plan = cell.plan
        stage = load_stage("sft", plan.preset)
        steps = plan.sft_steps or stage.max_steps
        manifest = self.manifest(plan.mixture, cell.seed, _samples(steps, stage.global_batch))
        overrides = {"seed": cell.seed, "split": plan.split}
        overrides |= {k: v for k in ("overview", "tile_indicators") if (v := getattr(plan, k)) is not None}
        run = StageRun(
            "sft", plan.preset, init=init, max_steps=steps, manifest=str(manifest), overrides=overrides
        )
        checkpoint = self.train(run)
        scores = self.evaluate(checkpoint, plan.eval_limit)
        seconds = round(time.monotonic() - start, 1) if scores.pop("fresh") else 0.0
        return CellResult(cell.arm, cell.seed, scores["categories"], scores["mmbase"], checkpoint, seconds)

    def train(self, run: StageRun) -> str:
        out = run.folder(self.home)
        summary = out / "run.json"
        if not (summary.is_file() and json.loads(summary.read_text()).get("status") == "finished"):
            out.mkdir(parents=True, exist_ok=True)
            command = run.command(out) + ["--no-track"]
            self._call(command, out / "trainer.log", f"{run.stage} training in {out}")
        return json.loads(summary.read_text())["last_checkpoint"]

    def evaluate(self, checkpoint: str, limit: int) -> dict:
        """Categories and MMBase of `checkpoint` on every built-in benchmark (read back when scored before)."""
        from mm15.eval.benchmarks import load_benchmarks

        names = [b.name for b in load_benchmarks(None)]
        folder = default_out(checkpoint, names, limit, self.snapshot, self.home)
        fresh = read_result(folder) is None
        if fresh:
            command = [sys.executable, "-m", "mm15.cli", "eval", "--model", checkpoint, "--limit", str(limit)]
            command += ["--snapshot", str(self.snapshot), "--out", str(folder), "--no-track", "--json"]
            folder.mkdir(parents=True, exist_ok=True)
            self._call(command, folder / "eval.log", f"evaluation of {checkpoint}")
        result = read_result(folder)
        return {"categories": result.categories, "mmbase": result.mmbase, "fresh": fresh}

    def _call(self, command: list[str], log: Path, what: str) -> None:
        with log.open("ab") as out:
            code = subprocess.call(command, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        if code != 0:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
            raise UserError(f"{what} failed (exit {code}): {tail[0]} (log: {log})")


def _samples(steps: int | None, batch: int) -> int:
    """Manifest positions for `steps` steps of `batch` samples (a one-epoch stage keeps the default)."""
    return max(1000, (steps or 0) * batch) if steps else 10_000
