"""Batched greedy decoding with the KV cache: prompts left-padded, one `generate` call per batch.

Left padding with the attention mask (position ids follow the mask) gives every sample the tokens it
gets alone, whatever the batch size: predictions do not depend on how samples are batched.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mm15.errors import UserError
from mm15.model.processing import MM15Processor


@dataclass
class LoadedModel:
    model: nn.Module
    processor: MM15Processor
    name: str  # what the user named: a folder, a model URI, or preset:NAME


def load_model(spec: str, device: str | None = None) -> LoadedModel:
    """A checkpoint folder (`save_pretrained`), an MLflow model URI (`models:/NAME@ALIAS`, `runs:/...`),
    or `preset:NAME` for the preset's untrained weights (seed 0): the baseline before training."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    import mm15.model  # noqa: F401  (registers the Auto classes)
    from mm15.model.presets import build_model, build_processor

    target = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if spec.startswith("preset:"):
        processor = build_processor(spec.removeprefix("preset:"))
        torch.manual_seed(0)
        model = build_model(spec.removeprefix("preset:"), processor)
    else:
        folder = _model_folder(spec)
        processor = AutoProcessor.from_pretrained(folder)
        model = AutoModelForImageTextToText.from_pretrained(folder, dtype=torch.float32)
    return LoadedModel(model.to(target).eval(), processor, spec)


def _model_folder(spec: str) -> Path:
    if "://" in spec or spec.startswith(("models:/", "runs:/")):
        from mm15.tracking import download_model

        return download_model(spec)
    folder = Path(spec)
    if not (folder / "config.json").is_file():
        raise UserError(
            f"{spec} is not a model folder (no config.json): give a checkpoint-<step> folder, "
            "a models:/NAME@ALIAS URI or preset:NAME"
        )
    return folder


def batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def encode_prompts(loaded: LoadedModel, prompts: Sequence[tuple[list[dict], list[bytes]]]) -> dict[str, Any]:
    """(messages, images) prompts -> one left-padded batch (images decoded and split here)."""
    encoded = []
    for messages, images in prompts:
        sample = loaded.processor.encode_chat(messages, images, add_generation_prompt=True)
        sample.pop("labels")
        encoded.append(sample)
    return dict(loaded.processor.pad(encoded, padding_side="left"))


@torch.no_grad()
def decode(loaded: LoadedModel, batch: dict[str, Any], max_new_tokens: int) -> list[str]:
    """Greedy continuations of an encoded batch, each cut at the end-of-turn token."""
    processor, model = loaded.processor, loaded.model
    device = next(model.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}
    out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False)
    end = processor.tokenizer.eos_token_id
    texts = []
    for row in out[:, batch["input_ids"].shape[1] :].tolist():
        if end in row:
            row = row[: row.index(end)]
        texts.append(processor.tokenizer.decode(row, skip_special_tokens=False))
    return texts


def generate(
    loaded: LoadedModel, prompts: Sequence[tuple[list[dict], list[bytes]]], max_new_tokens: int
) -> list[str]:
    """Greedy continuations of (messages, images) prompts, decoded up to the end-of-turn token."""
    return decode(loaded, encode_prompts(loaded, prompts), max_new_tokens)
