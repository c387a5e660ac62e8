"""Where a run keeps its state: everything lives under one home folder, MM15_HOME (default ./.mm15)."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def catalogs_dir() -> Path:
    """Configuration as data: sources, synthetic sizes, mixtures ($MM15_CATALOGS, default ./catalogs)."""
    return Path(os.environ.get("MM15_CATALOGS", PROJECT_ROOT / "catalogs"))


def home() -> Path:
    return Path(os.environ.get("MM15_HOME", ".mm15")).resolve()


def use_home(folder: str | Path | None) -> Path:
    """Make `folder` (when given) the MM15_HOME of this process and of the processes it starts, so that
    everything a flow run writes (the MLflow store included) lands in one home; the home in use."""
    if folder is not None:
        os.environ["MM15_HOME"] = str(Path(folder).resolve())
    return home()


def catalog_dir(root: Path | None = None) -> Path:
    return (root or home()) / "catalog"


def staging_dir(root: Path | None = None) -> Path:
    return (root or home()) / "staging"


def staging_url(root: Path | None = None) -> str:
    """Where curation stages shards: $MM15_STAGING_URL, storage that every staging machine and the
    committing process share (s3://bucket/staging, file:///shared/staging; one per home), else the
    home's staging folder."""
    return os.environ.get("MM15_STAGING_URL") or str(staging_dir(root))


def manifests_dir(root: Path | None = None) -> Path:
    return (root or home()) / "manifests"
