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


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With flow tests deselected (`-m "not flow"`, the fast loop), do not even import tests/flows/:
    importing the flows imports Prefect, seconds per run that select nothing."""
    if "not flow" in (config.getoption("markexpr") or "") and collection_path.name == "flows":
        return collection_path.parent == Path(__file__).parent
    return None


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


@pytest.fixture(scope="session")
def shared_lake(tmp_path_factory) -> Lake:
    """One small catalog for the tests that only read it (built once: a commit costs about a second).
    Two samples of source "a" and one bad_image reject."""
    from tests.lake import sample

    lake = Lake(tmp_path_factory.mktemp("shared-lake"))
    lake.commit(
        [lake.stage("a", [sample("a", "k1"), sample("a", "k2", (2,)), sample("a", "bad", images=[b"x"])])]
    )
    return lake


@pytest.fixture(scope="session")
def train_home(tmp_path_factory) -> Path:
    """MM15_HOME with a small catalog of every synthetic source and the cpt / all manifests over it:
    what the training and evaluation tests train on (see tests/train_home.py)."""
    from tests.train_home import build_train_home

    return build_train_home(tmp_path_factory.mktemp("train-home"))


@pytest.fixture(scope="session")
def trained_tiny(train_home, tmp_path_factory) -> dict:
    """CPT (15 steps) then SFT (60 steps) of the tiny preset on train_home, through `mm15 train`: the
    summaries (run.json) of both stages, held-out losses on 8 eval samples per category included."""
    from tests.train_home import train_tiny

    return train_tiny(train_home, tmp_path_factory.mktemp("trained-tiny"))
