"""Packing: the plan's invariants, and packed rows that give every sample the loss it has alone."""

from __future__ import annotations

import random

import pytest
import torch
from torch.nn import functional as F

from mm15.model.loss import IGNORE_INDEX
from mm15.model.presets import build_model, build_processor
from mm15.train.packing import collate_rows, loss_units, pack_row, plan_packs
from tests.images import png


def test_plan_fills_rows_in_order_within_bounds():
    rng = random.Random(0)
    lengths = [rng.randint(40, 400) for _ in range(2000)]
    views = [rng.randint(0, 5) for _ in range(2000)]
    plan = plan_packs(lengths, views, seq_len=1024, max_views=20)
    placed = sorted(p for row in plan.rows for p in row)
    assert placed == list(range(2000))  # every sample once
    for row, tokens in zip(plan.rows, plan.tokens, strict=True):
        assert row == sorted(row)
        assert tokens == sum(lengths[p] for p in row) <= 1024
        assert sum(views[p] for p in row) <= 20
    assert plan.efficiency >= 0.95


def test_samples_that_cannot_be_cut_are_reported_not_dropped():
    plan = plan_packs([100, 512, 200], [1, 9, 1], seq_len=512, max_views=10, fits=[True, False, True])
    assert plan.too_long == [1]
    assert sorted(p for row in plan.rows for p in row) == [0, 2]
    with pytest.raises(ValueError, match="more than a row holds"):
        plan_packs([10], [11], seq_len=512, max_views=10)


def test_row_positions_restart_per_sample_and_padding_is_its_own_segment():
    samples = [
        {
            "input_ids": torch.arange(3),
            "labels": torch.tensor([IGNORE_INDEX, 1, 2]),
            "pixel_values": torch.empty(0),
            "image_grids": [],
        },
        {
            "input_ids": torch.arange(4),
            "labels": torch.arange(4),
            "pixel_values": torch.empty(0),
            "image_grids": [],
        },
    ]
    row = pack_row(samples, seq_len=10, pad_id=0)
    assert row["position_ids"].tolist() == [0, 1, 2, 0, 1, 2, 3, 0, 1, 2]
    assert row["sample_index"].tolist()[:7] == [0, 0, 0, 1, 1, 1, 1]
    assert row["labels"].tolist()[7:] == [IGNORE_INDEX] * 3
    assert row["tokens"] == 7


def _conversations():
    colours = ["red", "blue", "green", "yellow"]
    out = []
    for k, (w, h) in enumerate([(96, 96), (200, 100), (64, 160), (120, 120), (80, 80)]):
        images = [png(k + 1, size=(w, h))] if k != 3 else []  # one text-only sample
        prompt = ("<image>" if images else "") + f"What colour is shape {k}?"
        out.append(
            (
                [
                    {"role": "user", "content": prompt},
                    {"role": "assistant", "content": colours[k % 4] * (k + 1)},
                ],
                images,
            )
        )
    return out


def _sample_losses(logits: torch.Tensor, labels: torch.Tensor, index: torch.Tensor) -> dict[int, float]:
    targets, predicted, owner = labels[:, 1:], logits[:, :-1], index[:, 1:]
    mask = targets != IGNORE_INDEX
    losses = F.cross_entropy(predicted[mask].float(), targets[mask], reduction="none")
    return {int(s): float(losses[owner[mask] == s].mean()) for s in owner[mask].unique()}


def test_packed_batch_gives_each_sample_its_loss_alone():
    processor = build_processor("tiny")
    torch.manual_seed(0)
    model = build_model("tiny", processor).eval()
    encoded = [processor.encode_chat(m, i) for m, i in _conversations()]
    # two rows: samples 0-2 and 3-4, padded to 400 tokens
    rows = [
        pack_row(encoded[:3], 400, processor.tokenizer.pad_token_id),
        pack_row(encoded[3:], 400, processor.tokenizer.pad_token_id),
    ]
    batch = collate_rows(rows, processor.image_processor.tile_size)
    inputs = {
        k: batch[k]
        for k in ("input_ids", "labels", "position_ids", "sample_index", "pixel_values", "image_grids")
    }
    with torch.no_grad():
        packed = model(**inputs, return_logits=True, use_cache=False)
        packed_losses = _sample_losses(packed.logits, batch["labels"], batch["sample_index"])
        alone = []
        for sample in encoded:
            single = processor.pad([sample])
            out = model(**single, use_cache=False)
            alone.append(float(out.loss))
        mean_loss = float(model(**inputs, use_cache=False).loss)
    assert sorted(packed_losses) == [0, 1, 2, 3, 4]
    for s, loss in packed_losses.items():
        assert loss == pytest.approx(alone[s], abs=1e-4), f"sample {s}"
    assert mean_loss == pytest.approx(sum(alone) / len(alone), abs=1e-4)  # the mean over samples
    assert loss_units(batch, "sample") == 5


def test_text_only_training_batch_reaches_every_parameter():
    processor = build_processor("tiny")
    torch.manual_seed(0)
    model = build_model("tiny", processor)
    conversation = [{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "hi"}]
    batch = processor.pad([processor.encode_chat(conversation)])
    model.eval()
    with torch.no_grad():
        reference = float(model(**batch).loss)
    model.train()
    loss = model(**batch).loss
    loss.backward()
    assert float(loss.detach()) == pytest.approx(reference, abs=1e-6)  # the blank tile weighs nothing
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing
    assert all(float(p.grad.abs().sum()) == 0 for p in model.vision_tower.parameters())
