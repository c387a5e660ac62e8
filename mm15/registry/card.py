"""The model card: what a registered version was trained on, how, how it scores, and what it is not for.

Markdown, kept as the version's description and as README.md beside the weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

CATEGORY_ORDER = ("general", "text_rich", "knowledge", "refer_ground", "multi_image", "in_context", "ocr")

INTENDED_USE = """\
- Research on training-data mixtures for multimodal LLMs at toy scale: how the share of each data
  category (general, text-rich, knowledge, grounding, multi-image, in-context, text-only) moves scores.
- Reproducing the MM1.5 data-centric recipe (continual pre-training, then supervised fine-tuning on a
  mixture) end to end, with its lineage: catalog snapshot, mixture manifests, code commit, flow run.
- Testing the pipeline itself: training, evaluation, registration, promotion and serving."""

LIMITS = """\
- Trained on small, mostly synthetic data (rendered shapes, charts, documents, code; a few converted
  public samples): it has not seen the variety of real images and text.
- English only, short prompts, small images; a tiny model: answers are often wrong or repetitive.
- Scores come only from the project's own held-out benchmarks (the catalog's eval split and any benchmark
  files configured), at a few samples per benchmark; they are not comparable with published MM1.5
  numbers or other models' leaderboards.
- Not for real-world use: no safety tuning, no evaluation of bias or harmful output, no guarantee that
  coordinates, numbers or text read from an image are right."""


def model_card(
    *,
    name: str,
    preset: str,
    training: dict,
    manifests: dict,
    scores: dict,
    baseline: dict | None,
    lineage: Mapping[str, str],
) -> str:
    """The card of a model trained in stages (`training`: stage -> run.json) on mixtures (`manifests`:
    mixture -> {"manifest", "manifest_hash", "snapshot"}), scored `scores` (report.json-like) against the
    untrained `baseline`."""
    snapshot = (
        lineage.get("mm15.catalog_snapshot")
        or _first(manifests, "snapshot")
        or _first(training, "catalog_snapshot")
    )
    stages = " + ".join(training) or "no training"
    mmbase = scores.get("mmbase")
    lines = [
        f"# {name}: the {preset} preset after {stages}, MMBase {_fmt(mmbase)}",
        "",
        f"A small multimodal LLM trained by the mm15 pipeline (the MM1.5 data-centric recipe at toy scale), "
        f"model preset `{preset}`, on catalog snapshot {snapshot if snapshot is not None else 'unknown'}.",
        "",
        "## Training data",
        "",
        *_mixtures(manifests),
        "## Training",
        "",
        *_stages(training),
        "## Scores",
        "",
        *_scores(scores, baseline),
        "## Intended use",
        "",
        INTENDED_USE,
        "",
        "## Limits",
        "",
        LIMITS,
        "",
        "## Lineage",
        "",
        *[f"- `{key}`: {value}" for key, value in sorted(lineage.items())],
    ]
    return "\n".join(lines).rstrip() + "\n"


def _first(rows: Mapping[str, Any], key: str) -> Any:
    return next(
        (row.get(key) for row in rows.values() if isinstance(row, Mapping) and row.get(key) is not None), None
    )


def _mixtures(manifests: Mapping[str, Any]) -> list[str]:
    if not manifests:
        return ["No mixture recorded.", ""]
    lines = []
    for mixture, info in manifests.items():
        lines += [
            f"### Mixture `{mixture}`",
            "",
            f"Manifest `{info.get('manifest', '?')}`, hash `{info.get('manifest_hash', '?')}`, "
            f"catalog snapshot {info.get('snapshot', '?')}.",
            "",
        ]
        summary = _summary(info.get("manifest"))
        if summary is None:
            lines += ["(the manifest's summary was not found: shares unknown)", ""]
            continue
        lines += [
            f"{summary.samples} samples, seed {summary.seed}, batch {summary.batch_size}.",
            "",
            "| category | expected share | realised share | samples | repetition |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for key, share in sorted(summary.categories.items(), key=lambda kv: _rank(kv[0])):
            lines.append(
                f"| {key} | {share.expected:.1%} | {share.realized:.1%} | {share.samples} | {share.repetition:.2f} |"
            )
        lines.append("")
    return lines


def _summary(manifest: Any):
    if not manifest:
        return None
    from mm15.mixture.summary import read_summary

    try:
        return read_summary(Path(manifest).with_suffix(".json"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _stages(training: Mapping[str, Any]) -> list[str]:
    if not training:
        return ["No training recorded (untrained weights).", ""]
    lines = [
        "| stage | mixture | manifest hash | steps | global batch | seq len | optimizer | peak LR | status |",
        "| --- | --- | --- | ---: | ---: | ---: | --- | ---: | --- |",
    ]
    for stage, run in training.items():
        config = run.get("stage_config") or {}
        steps = f"{run.get('step', '?')} / {run.get('total_steps', '?')}"
        lines.append(
            f"| {stage} | {run.get('mixture') or '?'} | `{run.get('manifest_hash') or '?'}` | {steps} | "
            f"{config.get('global_batch', '?')} | {config.get('seq_len', '?')} | {config.get('optimizer', '?')} | "
            f"{config.get('peak_lr', '?')} | {run.get('status', '?')} |"
        )
    return [*lines, ""]


def _scores(scores: Mapping[str, Any], baseline: Mapping[str, Any] | None) -> list[str]:
    """Per category and MMBase (0-100), against the untrained baseline when there is one."""
    categories = scores.get("categories") or {}
    base = (baseline or {}).get("categories") or {}
    head = "| | score |" + (" untrained baseline | delta |" if baseline else "")
    lines = [
        "Held-out benchmarks of this project, 0-100; MMBase is the mean of the general, text_rich and "
        "knowledge averages.",
        "",
        head,
        "| --- | ---: |" + (" ---: | ---: |" if baseline else ""),
    ]
    keys = sorted(set(categories) | set(base), key=_rank)
    rows = [(k, categories.get(k), base.get(k)) for k in keys]
    rows.append(("**MMBase**", scores.get("mmbase"), (baseline or {}).get("mmbase")))
    for key, value, before in rows:
        cells = [key, _fmt(value)]
        if baseline:
            delta = "" if value is None or before is None else f"{value - before:+.2f}"
            cells += [_fmt(before), delta]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def _rank(key: str) -> tuple[int, str]:
    return (CATEGORY_ORDER.index(key) if key in CATEGORY_ORDER else len(CATEGORY_ORDER), key)


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.2f}"
