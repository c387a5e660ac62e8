"""Registration: a checkpoint folder becomes a version of a registered model (`mm15-<preset>`), with its
lineage and scores as the version's tags and its model card as the description and as README.md.

Registering is idempotent: the version carries `mm15.checkpoint_digest` (a sha256 over the model's file
names and bytes), and a checkpoint whose digest a version already has is that version, logged once.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mm15 import tracking
from mm15.config import PLAIN_NAME
from mm15.errors import UserError

EXPERIMENT = "mm15-models"
PREFIX = "mm15-"
SCORE = "mm15.score."
DIGEST = "mm15.checkpoint_digest"
CARD = "README.md"
# Not part of the model: the optimizer state a checkpoint keeps to resume training, and a card to replace.
LEFT_OUT = {"training_state.pt", CARD}


def model_name(preset: str) -> str:
    """The registered model of a preset's trainings."""
    return f"{PREFIX}{preset}"


def model_files(checkpoint: Path) -> list[str]:
    """The files of the model in a checkpoint folder (relative POSIX paths, sorted): everything but the
    training state, an old model card and hidden files."""
    checkpoint = Path(checkpoint)
    files = []
    for path in checkpoint.rglob("*"):
        relative = path.relative_to(checkpoint)
        hidden = any(part.startswith(".") for part in relative.parts)
        if path.is_file() and not hidden and relative.as_posix() not in LEFT_OUT:
            files.append(relative.as_posix())
    return sorted(files)


def checkpoint_digest(checkpoint: Path, files: list[str] | None = None) -> str:
    """sha256 over the model files' names and bytes: the same weights and processor, the same digest."""
    digest = hashlib.sha256()
    for name in model_files(checkpoint) if files is None else files:
        digest.update(name.encode() + b"\0")
        with open(Path(checkpoint) / name, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def score_tags(scores: Mapping[str, Any]) -> dict[str, str]:
    """`mm15.score.<category>` per category and `mm15.score.mmbase`, from a report.json-like dict."""
    tags = {f"{SCORE}{k}": _number(v) for k, v in (scores.get("categories") or {}).items() if v is not None}
    if scores.get("mmbase") is not None:
        tags[f"{SCORE}mmbase"] = _number(scores["mmbase"])
    return tags


def scores_from_tags(tags: Mapping[str, str]) -> dict[str, Any]:
    """{"categories": {key: float}, "mmbase": float | None} read back from a version's tags."""
    values = {k.removeprefix(SCORE): float(v) for k, v in tags.items() if k.startswith(SCORE)}
    mmbase = values.pop("mmbase", None)
    return {"categories": values, "mmbase": mmbase}


def _number(value: Any) -> str:
    return repr(round(float(value), 4))


def register_model(checkpoint: Path, name: str, *, tags: Mapping[str, str], scores: dict, card: str) -> int:
    """Log `checkpoint` as a pyfunc model in a new run of experiment `mm15-models`, register it as a
    version of `name` (description: the card; tags: lineage, scores, checkpoint digest) and return the
    version number. A checkpoint already registered under `name` returns its version and logs nothing."""
    import mlflow

    checkpoint = Path(checkpoint)
    check_name(name)
    if not (checkpoint / "config.json").is_file():
        raise UserError(f"{checkpoint} is not a model folder (no config.json): give a checkpoint folder")
    files = model_files(checkpoint)
    digest = checkpoint_digest(checkpoint, files)
    client = tracking.client()
    for version in versions(client, name):
        if version.tags.get(DIGEST) == digest:
            return int(version.version)
    lineage = tracking.lineage_tags() | {k: str(v) for k, v in tags.items()} | {DIGEST: digest}
    run = client.create_run(
        _experiment_id(client), run_name=f"register {name}", tags=lineage | {"mm15.model": name}
    )
    metrics = {
        f"eval/category/{k}": float(v) for k, v in (scores.get("categories") or {}).items() if v is not None
    }
    metrics |= {f"eval/{k}": float(v) for k, v in (scores.get("benchmarks") or {}).items() if v is not None}
    if scores.get("mmbase") is not None:
        metrics["eval/mmbase"] = float(scores["mmbase"])
    with tempfile.TemporaryDirectory(prefix="mm15-register-") as tmp:
        staged = _stage(checkpoint, files, card, Path(tmp) / "model")
        with mlflow.start_run(run_id=run.info.run_id, nested=mlflow.active_run() is not None):
            from mm15.registry.pyfunc import log_pyfunc

            info = log_pyfunc(staged)
            if metrics:
                mlflow.log_metrics(metrics)
    version = mlflow.register_model(info.model_uri, name, tags=lineage | score_tags(scores))
    client.update_model_version(name, version.version, description=card)
    return int(version.version)


def _stage(checkpoint: Path, files: list[str], card: str, folder: Path) -> Path:
    """The model files (hard links where possible) and the card as README.md, in a fresh folder."""
    for name in files:
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(checkpoint / name, target)
        except OSError:
            shutil.copy2(checkpoint / name, target)
    (folder / CARD).write_text(card)
    return folder


def _experiment_id(client) -> str:
    found = client.get_experiment_by_name(EXPERIMENT)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(EXPERIMENT, artifact_location=tracking.artifact_root())
    except Exception:  # created meanwhile by another process
        found = client.get_experiment_by_name(EXPERIMENT)
        if found is None:
            raise
        return found.experiment_id


def check_name(name: str) -> str:
    if not PLAIN_NAME.match(name):
        raise UserError(f"bad model name {name!r}: use letters, digits, '_', '.', '-'")
    return name


def versions(client, name: str) -> Iterator[Any]:
    """Every version of registered model `name` (none when it is not registered)."""
    token = None
    while True:
        page = client.search_model_versions(f"name = '{check_name(name)}'", page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def model_names(client, name: str | None = None) -> list[str]:
    """`name` (a UserError when it is not registered), or every registered model named mm15-*."""
    if name is not None:
        check_name(name)
        if not client.search_registered_models(f"name = '{name}'"):
            known = ", ".join(model_names(client)) or "none"
            raise UserError(f"no registered model {name!r} at {tracking.tracking_uri()} (known: {known})")
        return [name]
    names, token = [], None
    while True:
        page = client.search_registered_models(f"name LIKE '{PREFIX}%'", page_token=token)
        names += [m.name for m in page]
        token = page.token
        if not token:
            return sorted(names)


def list_models(name: str | None = None) -> list[dict]:
    """One dict per version of every mm15-* registered model (or of `name`), by name then version."""
    client = tracking.client()
    rows = []
    for model in model_names(client, name):
        aliases: dict[int, list[str]] = {}
        for alias, number in client.get_registered_model(model).aliases.items():
            aliases.setdefault(int(number), []).append(alias)
        for version in sorted(versions(client, model), key=lambda v: int(v.version)):
            rows.append(describe(version, aliases.get(int(version.version), [])))
    return rows


def describe(version: Any, aliases: list[str]) -> dict[str, Any]:
    """What `mm15 models list` shows of a version (search results do not carry aliases: given apart)."""
    tags = version.tags
    scores = scores_from_tags(tags)
    promoted = tags.get("mm15.gate.promoted")
    created = datetime.fromtimestamp(version.creation_timestamp / 1000, UTC)
    return {
        "name": version.name,
        "version": int(version.version),
        "aliases": sorted(aliases),
        "mmbase": scores["mmbase"],
        "categories": scores["categories"],
        "promoted": None if promoted is None else promoted == "true",
        "reason": tags.get("mm15.gate.reason"),
        "forced": tags.get("mm15.gate.forced") == "true",
        "created": created.isoformat(timespec="seconds"),
        "run_id": version.run_id,
        "checkpoint_digest": tags.get(DIGEST),
        "description": (version.description or "").strip().splitlines()[0].lstrip("# ")
        if (version.description or "").strip()
        else "",
    }
