"""Shared fixtures. Flow tests talk to one real Prefect API per pytest session (started once, ~20 s)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from tests.lake import Lake

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory) -> str:
    """The URL of a real Prefect API server on a temporary SQLite database."""
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield PREFECT_API_URL.value()


MICRO_PRESET = {
    "seed": 7,
    "shard_size": 20,
    "presets": {
        "micro": {
            "image_size": 96,
            "sources": {
                "syn_general": {"train": 60, "eval": 20},
                "syn_text_only": {"train": 40, "eval": 20},
                "pdfa": {"train": 20},
            },
        }
    },
}


@pytest.fixture
def micro_catalogs(tmp_path, monkeypatch) -> Path:
    """A catalogs/ folder with a `micro` synthetic preset (seconds to curate) and no configured sources."""
    folder = tmp_path / "catalogs"
    (folder / "sources").mkdir(parents=True)
    (folder / "synthetic.yaml").write_text(yaml.safe_dump(MICRO_PRESET))
    monkeypatch.setenv("MM15_CATALOGS", str(folder))
    return folder


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("MM15_HOME", str(path))
    return path


@pytest.fixture
def lake(tmp_path) -> Lake:
    return Lake(tmp_path)
