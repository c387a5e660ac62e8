"""Registration tasks: log a trained checkpoint as a new version of `mm15-<preset>` (pyfunc, model card,
lineage tags), then the promotion gate, with the decision as artifacts. One registry write at a time
(the `registry` limit): overlapping runs never race on versions or aliases."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from prefect import runtime, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.utilities.urls import url_for

from mm15.registry import gate, load_gate_config, model_card, model_name, register_model
from mm15.tracking import lineage_tags
from mm15.train.runs import training_chain
from tasks.limits import REGISTRY, exclusive


@task(name="register-model")
def register_version(checkpoint: str, preset: str, evaluation: dict) -> dict:
    """Register `checkpoint` (scored by `evaluation`, a report.json summary) as a version of mm15-PRESET;
    a checkpoint already registered gets its version back."""
    chain = training_chain(Path(checkpoint))
    last = chain[next(reversed(chain))] if chain else {}
    manifests = {
        run["mixture"]: {
            "manifest": run["manifest"],
            "manifest_hash": run["manifest_hash"],
            "snapshot": run["catalog_snapshot"],
        }
        for run in chain.values()
    }
    lineage = lineage_tags() | {
        "mm15.preset": preset,
        "mm15.checkpoint": str(checkpoint),
        "mm15.catalog_snapshot": str(last.get("catalog_snapshot", "")),
        "mm15.mixture": str(last.get("mixture", "")),
        "mm15.manifest_hash": str(last.get("manifest_hash", "")),
        **_flow_run_tags(),
    }
    name = model_name(preset)
    card = model_card(
        name=name,
        preset=preset,
        training=chain,
        manifests=manifests,
        scores=evaluation,
        baseline=evaluation.get("baseline"),
        lineage=lineage,
    )
    with exclusive(REGISTRY):
        version = register_model(Path(checkpoint), name, tags=lineage, scores=evaluation, card=card)
    return {"name": name, "version": version}


@task(name="promotion-gate")
def gate_version(name: str, version: int) -> dict:
    """Give the version the alias `challenger` and promote it to `champion` if the gate says so; the
    decision and its numbers as artifacts (and as tags of the version)."""
    config = load_gate_config()
    with exclusive(REGISTRY):
        decision = gate(name, version, config)
    verdict = "promoted to `champion`" if decision.promoted else "not promoted (stays `challenger`)"
    champion = f"version {decision.champion}" if decision.champion else "no champion yet"
    create_markdown_artifact(
        f"# {name} version {version}: {verdict}\n\n{decision.reason}\n\n"
        f"Compared with {champion}; tolerance {config.tolerance:.2f} points on "
        f"{', '.join(config.tracked)}.\n",
        key="promotion-decision",
    )
    if decision.deltas:
        create_table_artifact(
            [{"metric": k, "challenger minus champion": v} for k, v in decision.deltas.items()],
            key="promotion-deltas",
            description=f"{name} v{version} against {champion} (points, 0-100)",
        )
    return asdict(decision)


def _flow_run_tags() -> dict[str, str]:
    """The Prefect flow run that produced the model (the outermost one: the pipeline's) and its UI page."""
    run_id = runtime.flow_run.id
    if not run_id:
        return {}
    root = str(runtime.flow_run.root_flow_run_id or run_id)
    tags = {"mm15.prefect_flow_run_id": root}
    if url := url_for("flow-run", obj_id=root, url_type="ui"):
        tags["mm15.prefect_flow_run_url"] = url
    return tags
