"""An evaluation: benchmarks' samples -> batched greedy answers -> per-sample scores -> benchmark scores,
category averages and MMBase (the mean of the General, Text-rich and Knowledge averages), all in [0, 100]."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mm15.eval.benchmarks import BenchmarkConfig
from mm15.eval.datasets import EvalSample, load_samples
from mm15.eval.generate import LoadedModel, batches, decode, encode_prompts
from mm15.eval.metrics import category_averages, mmbase, score, to_percent

NUMBER = re.compile(r"-?\d+(?:\.\d+)?%?")


@dataclass
class EvalResult:
    model: str
    benchmarks: dict[str, float]  # name -> score in [0, 100]
    categories: dict[str, float]
    mmbase: float | None
    counts: dict[str, int]  # samples scored per benchmark
    malformed: dict[str, list[dict]]  # rows of benchmark files that could not be used, with reasons
    predictions: list[dict] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"benchmarks": self.benchmarks, "categories": self.categories, "mmbase": self.mmbase}


def parse_answer(parser: str, text: str) -> str:
    """The part of a generation a metric reads: `number` keeps the first number written; `text`, `letter`
    and `box` pass the text through (the metrics find letters and boxes themselves)."""
    if parser == "number" and (found := NUMBER.search(text)):
        return found.group(0)
    return text


def evaluate(
    loaded: LoadedModel,
    benchmarks: list[BenchmarkConfig],
    catalog_dir: Path | None,
    snapshot: int | None,
    limit: int | None = None,
    batch_size: int = 8,
    progress: Callable[[int], None] | None = None,
    samples: dict[str, list[EvalSample]] | None = None,
) -> EvalResult:
    """Score `loaded` on every benchmark (the first `limit` samples of each)."""
    scores: dict[str, float] = {}
    counts: dict[str, int] = {}
    malformed: dict[str, list[dict]] = {}
    predictions: list[dict] = []
    for benchmark in benchmarks:
        if samples is not None and benchmark.name in samples:
            items, bad = samples[benchmark.name], []
        else:
            items, bad = load_samples(benchmark, catalog_dir, snapshot, limit)
        if bad:
            malformed[benchmark.name] = bad
        values = []
        answers = _answers(loaded, items, benchmark.max_new_tokens, batch_size, progress)
        for sample, answer in zip(items, answers, strict=True):
            value = score(benchmark.metric, parse_answer(benchmark.parser, answer), sample.references)
            values.append(value)
            predictions.append(
                {
                    "benchmark": benchmark.name,
                    "sample_id": sample.sample_id,
                    "prompt": _prompt_text(sample),
                    "prediction": answer,
                    "references": sample.references,
                    "score": value,
                }
            )
        counts[benchmark.name] = len(values)
        if values:
            scores[benchmark.name] = to_percent(sum(values) / len(values))
    categories = {
        k: to_percent(v / 100)
        for k, v in category_averages(
            scores, {b.name: b.category for b in benchmarks if b.name in scores}
        ).items()
    }
    base = mmbase(categories)
    return EvalResult(
        loaded.name,
        scores,
        categories,
        None if base is None else round(base, 2),
        counts,
        malformed,
        predictions,
    )


def _answers(
    loaded: LoadedModel,
    items: list[EvalSample],
    max_new_tokens: int,
    batch_size: int,
    progress: Callable[[int], None] | None,
) -> list[str]:
    """Answers in the order of `items`, decoded in batches of similar prompts (image count, then text
    length), so that little of a batch is padding; answers do not depend on the batching."""
    order = sorted(
        range(len(items)),
        key=lambda i: (len(items[i].images), sum(len(str(m["content"])) for m in items[i].messages), i),
    )
    answers: list[str] = [""] * len(items)
    for chunk in batches(order, batch_size):
        batch = encode_prompts(loaded, [(items[i].messages, items[i].images) for i in chunk])
        for i, answer in zip(chunk, decode(loaded, batch, max_new_tokens), strict=True):
            answers[i] = answer
        if progress:
            progress(len(chunk))
    return answers


def _prompt_text(sample: EvalSample) -> str:
    return "\n".join(f"{m['role']}: {m['content']}" for m in sample.messages)


def default_out(
    model: str, names: list[str], limit: int | None, snapshot: int | None, home: Path | None = None
) -> Path:
    """HOME/evals/<model folder name>-<hash of what was asked> (HOME: MM15_HOME by default): the same
    question, the same folder."""
    import hashlib
    import json

    from mm15 import paths

    key = hashlib.sha256(json.dumps([model, sorted(names), limit, snapshot]).encode()).hexdigest()[:10]
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(model.rstrip("/")).name or model)[-40:]
    return (home or paths.home()) / "evals" / f"{stem}-{key}"
