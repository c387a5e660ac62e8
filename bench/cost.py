"""Cost model: the paper's scale (docs/RECIPE.md section 3) priced with this project's measured rates.

    python bench/cost.py                          # the 1b preset on H100s at the 40% MFU target
    python bench/cost.py --preset 3b --mfu 0.35 --gpu-tflops 989 --stage-rate 150

Work at the paper's scale: CPT reads 30k steps x 256 samples (of a 45M-sample OCR catalog, which curation
must ingest whole), SFT one epoch of ~5.9M samples (~23k steps x 256). Each stage is priced from a rate:
- curation: staging samples/s per core (`bench/curate.py`: 276/s generating and rendering synthetic
  images; a real image source is decoded and hashed instead, so this errs high), near-duplicate search
  (`bench/dedup.py`: 6.7 s for 10M image hashes, scaled N log N), mixture builds (`bench/mixture.py`);
- training: FLOPs per sample counted by `mm15.train.metrics.FlopCounter` on the preset's real shapes
  (built on the meta device: no weights, no memory), at an assumed MFU (the 40% target of `bench/train.py`;
  not measured here, no GPU was available) of the GPU's dense bf16 peak;
- the loader: CPU cores per GPU to decode and split images at the measured 672 px rate
  (`bench/preprocess.py`: about 20 images/s per thread) fast enough to keep the GPU fed.
The sample shapes are assumptions, printed with the result: CPT 5 views (static 2x2 + overview) + 300
text tokens; SFT 7 views on average (dynamic (4, 9) grids) + 400 text tokens.
"""

from __future__ import annotations

import argparse
import math

import torch

from mm15.model.modeling import MM15ForConditionalGeneration
from mm15.model.presets import get_preset
from mm15.train.metrics import FlopCounter

CPT_SAMPLES, CATALOG_SAMPLES, SFT_SAMPLES = 30_000 * 256, 45_000_000, 5_900_000


def sample_flops(preset_name: str, views: int, text_tokens: int) -> tuple[float, int]:
    """Training FLOPs of one sample of `views` image views and `text_tokens` text tokens, and its tokens."""
    preset = get_preset(preset_name)
    vocab = preset.text.get("vocab_size", 512) + 64
    with torch.device("meta"):
        model = MM15ForConditionalGeneration(preset.model_config(vocab - 1, vocab_size=vocab))
    tokens = views * preset.tokens_per_tile + text_tokens
    return FlopCounter.of(model).step_flops(tokens, tokens**2, views), tokens


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="1b")
    parser.add_argument("--gpu-tflops", type=float, default=989.0, help="dense bf16 peak (H100: 989)")
    parser.add_argument("--mfu", type=float, default=0.40, help="assumed model FLOPs utilisation")
    parser.add_argument("--stage-rate", type=float, default=276.0, help="staged samples/s per core")
    parser.add_argument("--dedup-10m-s", type=float, default=6.7, help="image near-dup search, 10M hashes")
    parser.add_argument("--mixture-rate", type=float, default=1e6 / 3.2, help="manifest samples/s")
    parser.add_argument("--decode-rate", type=float, default=20.0, help="672 px images/s per loader thread")
    args = parser.parse_args()

    gpu_flops = args.gpu_tflops * 1e12 * args.mfu
    rows = [("curation: stage the 45M-sample OCR catalog", CATALOG_SAMPLES / args.stage_rate / 3600, "core")]
    n = CATALOG_SAMPLES + SFT_SAMPLES
    dedup_s = args.dedup_10m_s * n * math.log(n) / (1e7 * math.log(1e7))
    rows.append(("curation: near-duplicate search over all images", dedup_s / 3600, "core"))
    rows.append(
        ("mixtures: cpt + sft manifests", (CPT_SAMPLES + SFT_SAMPLES) / args.mixture_rate / 3600, "core")
    )
    print(f"preset {args.preset}, {args.gpu_tflops:.0f} TFLOP/s GPUs at {args.mfu:.0%} MFU")
    for stage, samples, views, text in (("cpt", CPT_SAMPLES, 5, 300), ("sft", SFT_SAMPLES, 7, 400)):
        flops, tokens = sample_flops(args.preset, views, text)
        gpu_hours = samples * flops / gpu_flops / 3600
        per_gpu = gpu_flops / flops  # samples/s one GPU trains
        cores = per_gpu * views / args.decode_rate
        rows.append(
            (
                f"{stage}: {samples / 1e6:.1f}M samples x {tokens} tokens, {flops / 1e12:.2f} TFLOP each",
                gpu_hours,
                "GPU",
            )
        )
        rows.append(
            (f"{stage}: loader threads per GPU ({per_gpu:.0f} samples/s x {views} views)", cores, "threads")
        )
    width = max(len(r[0]) for r in rows)
    print(f"{'work':<{width}}  {'cost':>10}")
    for work, value, unit in rows:
        shown = f"{value:,.1f} {unit}" + ("-h" if unit in ("core", "GPU") else "")
        print(f"{work:<{width}}  {shown:>16}")


if __name__ == "__main__":
    main()
