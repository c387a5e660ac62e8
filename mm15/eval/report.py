"""An evaluation's report: a markdown table (with deltas against a baseline), a chart, the JSON summary and
the predictions (one JSON line per sample)."""

from __future__ import annotations

import json
from pathlib import Path

from mm15.atomic import write_text_atomic
from mm15.eval.runner import EvalResult

CATEGORY_ORDER = ("general", "text_rich", "knowledge", "refer_ground", "multi_image", "in_context", "ocr")


def markdown(result: EvalResult, baseline: EvalResult | None = None) -> str:
    """Benchmarks, categories and MMBase as markdown tables; with a baseline, its scores and the deltas."""
    head = ["", "score"] + (["baseline", "delta"] if baseline else [])

    def row(name: str, value: float | None, base: float | None) -> list[str]:
        cells = [name, _fmt(value)]
        if baseline:
            delta = None if value is None or base is None else value - base
            cells += [_fmt(base), "" if delta is None else f"{delta:+.2f}"]
        return cells

    rows = [row("**MMBase**", result.mmbase, baseline.mmbase if baseline else None)]
    for key in sorted(result.categories, key=_category_rank):
        rows.append(
            row(f"category {key}", result.categories[key], (baseline.categories if baseline else {}).get(key))
        )
    for name in sorted(result.benchmarks):
        rows.append(
            row(
                f"{name} ({result.counts[name]} samples)",
                result.benchmarks[name],
                (baseline.benchmarks if baseline else {}).get(name),
            )
        )
    lines = [f"# Evaluation of {result.model}", ""]
    if baseline:
        lines += [f"Baseline: {baseline.model}", ""]
    lines += ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    for name, bad in sorted(result.malformed.items()):
        reasons = sorted({b["reason"] for b in bad})
        lines += ["", f"{name}: {len(bad)} malformed rows not scored ({'; '.join(reasons)[:300]})"]
    return "\n".join(lines) + "\n"


def _category_rank(key: str) -> tuple[int, str]:
    return (CATEGORY_ORDER.index(key) if key in CATEGORY_ORDER else len(CATEGORY_ORDER), key)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def plot(result: EvalResult, out: Path, baseline: EvalResult | None = None) -> Path:
    """Bars per category and MMBase (the baseline beside, when given), scores 0-100."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted(result.categories, key=_category_rank)
    values = [result.categories[k] for k in keys] + [result.mmbase or 0.0]
    labels = [*keys, "MMBase"]
    fig, axis = plt.subplots(figsize=(max(6, len(labels) * 0.9), 3.5), dpi=110)
    width = 0.4 if baseline else 0.7
    positions = range(len(labels))
    axis.bar(
        [p - (width / 2 if baseline else 0) for p in positions], values, width, label=_short(result.model)
    )
    if baseline:
        base = [baseline.categories.get(k, 0.0) for k in keys] + [baseline.mmbase or 0.0]
        axis.bar(
            [p + width / 2 for p in positions], base, width, label=_short(baseline.model), color="tab:gray"
        )
        axis.legend(fontsize=8)
    axis.set_xticks(list(positions), labels, rotation=30, ha="right", fontsize=8)
    axis.set_ylim(0, 100)
    axis.set_ylabel("score (0-100)")
    axis.set_title("Scores per category")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


def _short(name: str) -> str:
    return name if len(name) <= 40 else "..." + name[-37:]


def write_report(
    result: EvalResult, folder: Path, baseline: EvalResult | None = None, predictions: Path | None = None
) -> dict[str, Path]:
    """report.md, report.json, scores.png and predictions.jsonl (or `predictions`) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "markdown": folder / "report.md",
        "json": folder / "report.json",
        "chart": folder / "scores.png",
        "predictions": predictions or folder / "predictions.jsonl",
    }
    write_text_atomic(paths["markdown"], markdown(result, baseline))
    summary = result.to_json() | {
        "model": result.model,
        "counts": result.counts,
        "malformed": {k: len(v) for k, v in result.malformed.items()},
    }
    if baseline:
        summary["baseline"] = baseline.to_json() | {"model": baseline.model}
    write_text_atomic(paths["json"], json.dumps(summary, indent=2))
    plot(result, paths["chart"], baseline)
    paths["predictions"].parent.mkdir(parents=True, exist_ok=True)
    if result.predictions or not paths["predictions"].exists():  # a result read back keeps its file
        write_text_atomic(paths["predictions"], "".join(json.dumps(p) + "\n" for p in result.predictions))
    return paths


def track(result: EvalResult, paths: dict[str, Path], baseline: EvalResult | None = None) -> str:
    """Log an evaluation to MLflow (experiment `mm15-eval`): eval/<benchmark>, eval/category/<key>,
    eval/mmbase, and the report's files. Returns the run id."""
    from mm15.tracking import Run

    run = Run("mm15-eval", name=f"eval {_short(result.model)}", tags={"mm15.model": result.model})
    run.log_params(
        {
            "model": result.model,
            "baseline": baseline.model if baseline else "",
            "benchmarks": ",".join(sorted(result.benchmarks)),
        }
    )
    metrics = {f"eval/{k}": v for k, v in result.benchmarks.items()}
    metrics |= {f"eval/category/{k}": v for k, v in result.categories.items()}
    if result.mmbase is not None:
        metrics["eval/mmbase"] = result.mmbase
    run.log_metrics(metrics, 0)
    for path in paths.values():
        run.log_artifact(path)
    run.finish()
    return run.run_id


def read_result(folder: Path) -> EvalResult | None:
    """The scores of the evaluation written to `folder` by `write_report` (None when there is none):
    what a cached evaluation needs, without its predictions."""
    file = Path(folder) / "report.json"
    if not file.is_file():
        return None
    data = json.loads(file.read_text())
    return EvalResult(
        data["model"], data["benchmarks"], data["categories"], data["mmbase"], data["counts"], {}
    )
