"""Benchmark: evaluation throughput of the tiny preset, batch 1 vs batch 8 (target: batch 8 at least 3x).

    python bench/eval.py                             # a trained checkpoint if MM15_HOME/runs has one
    python bench/eval.py --model preset:tiny --samples 64 --benchmarks general,text_rich

The same samples (the first N of each benchmark, from the catalog in MM15_HOME) are decoded greedily with
the KV cache, once per batch size, in one process; the predictions must be identical for both sizes.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from mm15 import paths
from mm15.eval.benchmarks import load_benchmarks
from mm15.eval.datasets import load_samples
from mm15.eval.generate import load_model
from mm15.eval.runner import evaluate


def latest_checkpoint() -> str:
    found = sorted(paths.home().glob("runs/sft-*/checkpoint-*"), key=lambda p: p.stat().st_mtime)
    return str(found[-1]) if found else "preset:tiny"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None, help="default: the newest SFT checkpoint, else preset:tiny")
    parser.add_argument("--benchmarks", default="general,text_rich,refer_ground,multi_image")
    parser.add_argument("--samples", type=int, default=32, help="per benchmark")
    args = parser.parse_args()
    model = args.model or latest_checkpoint()
    loaded = load_model(model, "cpu")
    configs = load_benchmarks(args.benchmarks.split(","))
    samples = {b.name: load_samples(b, None, None, args.samples)[0] for b in configs}
    total = sum(len(s) for s in samples.values())
    print(
        f"{model}: {total} samples over {len(configs)} benchmarks, {torch.get_num_threads()} threads",
        file=sys.stderr,
    )
    rates, predictions = {}, {}
    for batch in (1, 8):
        started = time.perf_counter()
        result = evaluate(loaded, configs, None, None, batch_size=batch, samples=samples)
        rates[batch] = total / (time.perf_counter() - started)
        predictions[batch] = [p["prediction"] for p in result.predictions]
        print(f"batch {batch}: {rates[batch]:.1f} samples/s  (MMBase-free scores: {result.benchmarks})")
    print(
        f"batch 8 / batch 1: {rates[8] / rates[1]:.2f}x; identical predictions: {predictions[1] == predictions[8]}"
    )


if __name__ == "__main__":
    main()
