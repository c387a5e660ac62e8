"""Benchmark: training throughput. On the CPU, the tiny preset through the real trainer; on a GPU, also
the 1b preset's shapes in bf16 with random weights, and its MFU.

    python bench/train.py                        # tiny: SFT on the latest `all` manifest, 30 steps
    python bench/train.py --stage cpt --steps 20
    python bench/train.py --gpu-preset 1b        # on a GPU: MFU of the 1b shapes (random weights)

CPU (tiny): `mm15 train` runs for `--steps` steps on the latest manifest in MM15_HOME (run `make run` or
`mm15 run` first) into a temporary folder, and the per-step metrics the trainer writes to
metrics.jsonl are averaged over the steps after the first two: tokens/s (real tokens), tiles/s,
data-wait fraction, packing efficiency, peak memory.

GPU (1b): a model of the preset's architecture built from its config (no weights are read), packed rows
of `--seq-len` tokens holding samples of 5 views (2x2 tiles + overview) and text, bf16 autocast,
AdamW; MFU = model FLOPs (decoder per token, ViT per tile; mm15.train.metrics.FlopCounter) / time /
the GPU's dense bf16 peak. Target: at least 40%.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
KEYS = ("tokens_per_s", "tiles_per_s", "data_wait", "packing_efficiency", "peak_memory_mb", "seconds")


def bench_tiny(stage: str, steps: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        command = [
            sys.executable,
            "-m",
            "mm15.cli",
            "train",
            "--stage",
            stage,
            "--preset",
            "tiny",
            "--max-steps",
            str(steps),
            "--no-track",
            "--out",
            str(out),
        ]
        started = time.perf_counter()
        subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - started
        metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][2:]
        run = json.loads((out / "run.json").read_text())
    result = {k: statistics.mean(m[k] for m in metrics) for k in KEYS}
    result["samples_per_s"] = sum(m["samples"] for m in metrics) / sum(m["seconds"] for m in metrics)
    result["plan_packing_efficiency"] = run["packing_efficiency"]
    result["wall_s"] = wall
    return result


def bench_gpu(preset_name: str, steps: int, seq_len: int, rows: int, device: str = "cuda") -> dict:
    from mm15.model.modeling import MM15ForConditionalGeneration
    from mm15.model.presets import get_preset
    from mm15.train.metrics import FlopCounter, peak_flops, segment_lengths_squared

    device = torch.device(device)
    preset = get_preset(preset_name)
    vocab = preset.text.get("vocab_size", 512) + 64
    image_token = vocab - 1
    config = preset.model_config(image_token, vocab_size=vocab)
    config._attn_implementation = "sdpa"
    model = MM15ForConditionalGeneration(config).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=device.type == "cuda")
    batch = _packed_batch(preset, image_token, seq_len, rows, device)
    counter = FlopCounter.of(model)
    flops = counter.step_flops(
        batch["input_ids"].numel(),
        segment_lengths_squared(batch["position_ids"].cpu()),
        len(batch["pixel_values"]),
    )
    times = []
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for step in range(steps + 2):
        sync()
        started = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = model(**batch, use_cache=False).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync()
        if step >= 2:
            times.append(time.perf_counter() - started)
    seconds = statistics.median(times)
    peak = peak_flops(device)
    return {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "tokens_per_s": batch["input_ids"].numel() / seconds,
        "tiles_per_s": len(batch["pixel_values"]) / seconds,
        "step_s": seconds,
        "tflops": flops / seconds / 1e12,
        "mfu": flops / seconds / peak if peak else None,
        "peak_memory_gb": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
    }


def _packed_batch(preset, image_token: int, seq_len: int, rows: int, device: torch.device) -> dict:
    """Rows of samples, each 5 views of `tokens_per_tile` placeholders plus 300 text tokens."""
    views, q = 5, preset.tokens_per_tile
    sample = views * q + 300
    per_row = max(1, seq_len // sample)
    ids = torch.randint(0, image_token - 64, (rows, seq_len))
    positions = torch.zeros(rows, seq_len, dtype=torch.long)
    index = torch.zeros(rows, seq_len, dtype=torch.long)
    for r in range(rows):
        for k in range(per_row):
            start = k * sample
            ids[r, start : start + views * q] = image_token
            positions[r, start : start + sample] = torch.arange(sample)
            index[r, start : start + sample] = r * per_row + k
        tail = per_row * sample
        positions[r, tail:] = torch.arange(seq_len - tail)
        index[r, tail:] = r * per_row + per_row - 1
    labels = ids.clone()
    labels[ids == image_token] = -100
    tile = preset.tile
    return {
        "input_ids": ids.to(device),
        "labels": labels.to(device),
        "position_ids": positions.to(device),
        "sample_index": index.to(device),
        "pixel_values": torch.randn(rows * per_row * views, 3, tile, tile, device=device),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stage", default="sft", help="tiny stage to run on the CPU: cpt or sft")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--gpu-preset", default="1b", help="preset whose shapes are measured on a GPU")
    parser.add_argument("--seq-len", type=int, default=4096)
    parser.add_argument("--rows", type=int, default=2, help="packed rows per step on the GPU")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    tiny = bench_tiny(args.stage, args.steps)
    print(f"tiny {args.stage} on CPU ({torch.get_num_threads()} threads), {args.steps} steps:")
    print(
        f"  {tiny['tokens_per_s']:,.0f} tokens/s  {tiny['samples_per_s']:.1f} samples/s  "
        f"{tiny['tiles_per_s']:.1f} tiles/s  data wait {tiny['data_wait']:.1%}"
    )
    print(
        f"  packing {tiny['packing_efficiency']:.1%} per step ({tiny['plan_packing_efficiency']:.1%} over the "
        f"plan)  peak memory {tiny['peak_memory_mb']:,.0f} MB  {tiny['seconds']:.2f} s/step  wall {tiny['wall_s']:.0f} s"
    )
    if not torch.cuda.is_available():
        print(f"no GPU here: the {args.gpu_preset} MFU benchmark runs where torch.cuda.is_available()")
        return
    gpu = bench_gpu(args.gpu_preset, args.steps, args.seq_len, args.rows)
    print(f"{args.gpu_preset} shapes on {gpu['device']}, bf16, {args.rows} x {args.seq_len} tokens per step:")
    print(
        f"  {gpu['tokens_per_s']:,.0f} tokens/s  {gpu['tiles_per_s']:.0f} tiles/s  {gpu['tflops']:.0f} TFLOP/s  "
        f"MFU {gpu['mfu']:.1%}  peak memory {gpu['peak_memory_gb']:.1f} GB"
    )


if __name__ == "__main__":
    main()
