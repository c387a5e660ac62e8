"""Helpers the adapter tests share: split and key records, box corners, chat turns, random mutations."""

from __future__ import annotations

import random

from mm15.data.record import Box, Reject, Sample


def split(records: list) -> tuple[list[Sample], list[Reject]]:
    return [r for r in records if isinstance(r, Sample)], [r for r in records if isinstance(r, Reject)]


def by_key(records) -> dict:
    records = list(records)
    keyed = {r.key: r for r in records}
    assert len(keyed) == len(records), "keys must tell records apart"
    return keyed


def corners(boxes: list[Box]) -> list[tuple]:
    return [(box.image, box.x1, box.y1, box.x2, box.y2) for box in boxes]


def user_assistant(*pairs: str) -> list[dict[str, str]]:
    roles = ["user", "assistant"] * len(pairs)
    return [{"role": role, "content": text} for role, text in zip(roles, pairs, strict=False)]


def mutation(rng: random.Random, value, depth: int = 0):
    """`value` with one random part replaced by something of another shape."""
    junk = [
        None,
        3,
        -1.5,
        True,
        "",
        "x",
        [],
        {},
        [None],
        {"from": 1},
        "../../etc/passwd",
        "/abs.png",
        "\ud800",
        10**400,
        float("nan"),
        [0, 0, 1e308, 1e308],
    ]
    if depth > 3 or rng.random() < 0.25:
        return rng.choice(junk)
    if isinstance(value, dict) and value:
        key = rng.choice(list(value))
        return {**value, key: mutation(rng, value[key], depth + 1)}
    if isinstance(value, list) and value:
        index = rng.randrange(len(value))
        return [*value[:index], mutation(rng, value[index], depth + 1), *value[index + 1 :]]
    return rng.choice(junk)
