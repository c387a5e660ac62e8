"""A study's results: the runs of every arm, and whether each finding holds beyond seed noise.

A finding "A > B" on a metric compares the arms seed by seed: d_s = score(A, s) - score(B, s). Its
`difference` is the mean of d_s, its `noise` the standard error of that mean (the sample standard
deviation of d_s over the square root of the number of seeds), and it holds when the difference is
positive and more than twice the noise. One seed gives no noise estimate: nothing holds.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable

from mm15.ablate.runner import CellResult
from mm15.ablate.study import Finding, Study


def study_result(study: Study, preset: str, cells: Iterable[CellResult], seconds: float) -> dict:
    """The JSON of a study run: {"study", "preset", "seconds", "arms": {ARM: {"runs": [...]}}, "findings"}."""
    arms: dict[str, dict] = {arm: {"runs": []} for arm in study.arms}
    for cell in sorted(cells, key=lambda c: (list(study.arms).index(c.arm), c.seed)):
        run = {"seed": cell.seed, "categories": cell.categories, "mmbase": cell.mmbase}
        arms[cell.arm]["runs"].append(run)
    findings = [judge(finding, arms) for finding in study.findings]
    return {
        "study": study.name,
        "preset": preset,
        "seconds": round(seconds, 1),
        "arms": arms,
        "findings": findings,
    }


def metric_value(run: dict, metric: str) -> float | None:
    return run["mmbase"] if metric == "mmbase" else run["categories"].get(metric)


def judge(finding: Finding, arms: dict[str, dict]) -> dict:
    """The finding with its paired difference over the seeds both arms ran, its noise and verdict."""
    better, worse = finding.arms
    scores = [
        {r["seed"]: metric_value(r, finding.metric) for r in arms[arm]["runs"]} for arm in (better, worse)
    ]
    seeds = sorted(s for s in scores[0] if s in scores[1] and None not in (scores[0][s], scores[1][s]))
    diffs = [scores[0][s] - scores[1][s] for s in seeds]
    difference = statistics.fmean(diffs) if diffs else None
    noise = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) >= 2 else None
    holds = difference is not None and noise is not None and difference > 0 and difference > 2 * noise
    return {
        "name": finding.name,
        "metric": finding.metric,
        "expect": finding.expect,
        "holds": holds,
        "difference": None if difference is None else round(difference, 2),
        "noise": None if noise is None else round(noise, 2),
    }
