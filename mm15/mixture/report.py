"""Renderings of a manifest summary: a table (Prefect artifact), text and JSON (`mm15 mixture show`),
a bar chart (PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mm15.mixture.summary import ManifestSummary, Share


def summary_table(summary: ManifestSummary, by: str = "category") -> list[dict[str, Any]]:
    """One row per category (or per source, `by="source"`), largest expected share first."""
    if by not in ("category", "source"):
        raise ValueError(f"by must be 'category' or 'source', got {by!r}")
    shares = summary.categories if by == "category" else summary.sources
    return [
        {
            by: name,
            "expected %": round(100 * s.expected, 2),
            "realized %": round(100 * s.realized, 2),
            "samples": s.samples,
            "available": s.available,
            "repetition": round(s.repetition, 2),
        }
        for name, s in _largest_first(shares)
    ]


def render_text(summary: ManifestSummary) -> str:
    """A human-readable report: lineage, shares per category and per source, repetition."""
    layout = "stratified per batch" if summary.stratified else "random batches"
    lines = [
        f"mixture {summary.mixture}: {summary.samples:,} samples, batch {summary.batch_size} ({layout}), "
        f"seed {summary.seed}, sources within a category {summary.within_category}",
        f"snapshot {summary.snapshot}  manifest sha256 {summary.manifest_hash}",
        f"largest share error {100 * summary.max_share_error:.3f} pp; "
        f"largest per-batch deviation {summary.max_batch_deviation:.2f} samples",
        "",
        _text_table(summary_table(summary, "category")),
        "",
        _text_table(summary_table(summary, "source")),
    ]
    repeated = _repeated(summary)
    if repeated:
        lines += ["", "sampled with replacement (too few rows for the share):"]
        lines += [
            f"  {name}: {s.samples:,} draws of {s.available:,} rows (x{s.repetition:.2f})"
            for name, s in repeated
        ]
    return "\n".join(lines) + "\n"


def _repeated(summary: ManifestSummary) -> list[tuple[str, Share]]:
    """Categories drawn with replacement, then sources so drawn inside categories that were not."""
    categories = [(name, s) for name, s in summary.categories.items() if s.repetition > 1]
    done = {name for name, _ in categories}
    sources = [
        (name, s)
        for name, s in summary.sources.items()
        if s.repetition > 1 and name.split("/")[0] not in done
    ]
    return categories + sources


def to_json(summary: ManifestSummary) -> dict[str, Any]:
    """The JSON form (`mm15 mixture show --json`): shares as fractions of 1, keyed by category and source."""
    data = summary.to_dict()
    return {
        "mixture": data.pop("mixture"),
        "snapshot": data.pop("snapshot"),
        "manifest_hash": data.pop("manifest_hash"),
        "categories": data.pop("categories"),
        "sources": data.pop("sources"),
        "max_share_error": summary.max_share_error,
        **data,
    }


def plot_shares(summary: ManifestSummary, path: Path) -> Path:
    """A PNG bar chart of expected vs realised shares, per category (top) and per source (bottom)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = [("category", summary.categories), ("source", summary.sources)]
    fig = Figure(figsize=(max(8.0, 0.55 * len(summary.sources)), 8.0), layout="constrained")
    FigureCanvasAgg(fig)
    for ax, (by, shares) in zip(fig.subplots(2, 1), panels, strict=True):
        names, rows = zip(*_largest_first(shares), strict=True) if shares else ((), ())
        x = range(len(names))
        ax.bar([i - 0.2 for i in x], [100 * s.expected for s in rows], 0.4, label="expected")
        ax.bar([i + 0.2 for i in x], [100 * s.realized for s in rows], 0.4, label="realized")
        ax.set_xticks(list(x), names, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("share of samples (%)")
        ax.set_title(f"per {by}", fontsize=10)
        ax.legend(fontsize=8)
    fig.suptitle(
        f"mixture {summary.mixture}: snapshot {summary.snapshot}, manifest {summary.manifest_hash[:12]}"
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100, metadata={"Software": None})
    return path


def _largest_first(shares: dict[str, Share]) -> list[tuple[str, Share]]:
    return sorted(shares.items(), key=lambda item: (-item[1].expected, item[0]))


def _text_table(rows: list[dict[str, Any]]) -> str:
    header = list(rows[0]) if rows else []
    cells = [[_cell(v) for v in row.values()] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    fmt = [f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths)]
    return "\n".join(
        "  ".join(f.format(c) for f, c in zip(fmt, line, strict=True)) for line in [header, *cells]
    )


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
