"""A study's results for people: a chart (arms x metrics, error bars over seeds) and markdown tables."""

from __future__ import annotations

import statistics
from pathlib import Path

from mm15.ablate.results import metric_value
from mm15.eval.metrics import MMBASE_CATEGORIES

_ORDER = (*MMBASE_CATEGORIES, "refer_ground", "multi_image", "in_context", "ocr")


def metrics_of(result: dict) -> list[str]:
    """The metrics a study reports: every category scored, in a fixed order, then MMBase."""
    seen = {k for arm in result["arms"].values() for run in arm["runs"] for k in run["categories"]}
    ordered = [k for k in _ORDER if k in seen] + sorted(seen - set(_ORDER))
    return [*ordered, "mmbase"]


def mean_sd(result: dict, arm: str, metric: str) -> tuple[float | None, float]:
    values = [v for run in result["arms"][arm]["runs"] if (v := metric_value(run, metric)) is not None]
    if not values:
        return None, 0.0
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def chart(result: dict, out: Path) -> Path:
    """Grouped bars: one group per metric, one bar per arm (mean over seeds, error bar one SD)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics, arms = metrics_of(result), list(result["arms"])
    width = 0.8 / max(1, len(arms))
    fig, axis = plt.subplots(figsize=(max(7, len(metrics) * (0.5 + 0.25 * len(arms))), 4), dpi=110)
    for i, arm in enumerate(arms):
        stats = [mean_sd(result, arm, m) for m in metrics]
        positions = [j - 0.4 + width * (i + 0.5) for j in range(len(metrics))]
        axis.bar(
            positions,
            [m or 0.0 for m, _ in stats],
            width,
            yerr=[sd for _, sd in stats],
            capsize=2,
            label=arm,
        )
    axis.set_xticks(range(len(metrics)), [m if m != "mmbase" else "MMBase" for m in metrics], fontsize=8)
    axis.set_ylabel("score (0-100), mean over seeds ± SD")
    seeds = max((len(a["runs"]) for a in result["arms"].values()), default=0)
    axis.set_title(f"{result['study']} ({result['preset']}, {seeds} seeds)")
    axis.legend(fontsize=8, ncol=min(4, len(arms)))
    axis.set_ylim(bottom=0)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


def arms_table(result: dict) -> str:
    """Markdown: arms x metrics, mean ± SD over seeds."""
    metrics = metrics_of(result)
    lines = ["| arm | " + " | ".join("MMBase" if m == "mmbase" else m for m in metrics) + " |"]
    lines.append("|---" * (len(metrics) + 1) + "|")
    for arm in result["arms"]:
        cells = []
        for metric in metrics:
            mean, sd = mean_sd(result, arm, metric)
            cells.append("–" if mean is None else f"{mean:.1f} ± {sd:.1f}")
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def findings_table(results: list[dict]) -> str:
    """Markdown: every finding of the given study results, with its verdict, and each study's time."""
    lines = [
        "| study | finding | metric | expected (paper) | difference | noise (SE) | holds | study time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        minutes = f"{result['seconds'] / 60:.1f} min"
        for f in result["findings"]:
            difference = "–" if f["difference"] is None else f"{f['difference']:+.2f}"
            noise = "–" if f["noise"] is None else f"{f['noise']:.2f}"
            holds = "**yes**" if f["holds"] else "no"
            lines.append(
                f"| {result['study']} | {f['name']} | {f['metric']} | {f['expect']} | {difference} | {noise} "
                f"| {holds} | {minutes} |"
            )
        if not result["findings"]:
            lines.append(f"| {result['study']} | (reported only) | | | | | | {minutes} |")
    return "\n".join(lines)
