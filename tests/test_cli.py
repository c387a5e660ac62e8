"""The `mm15` command: help everywhere, one-line errors, read-only catalog queries."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from mm15.cli import app
from tests.lake import sample

runner = CliRunner()


def mm15(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mm15.cli", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["curate"],
        ["ingest"],
        ["run"],
        ["catalog"],
        ["catalog", "sql"],
        ["catalog", "show"],
        ["catalog", "snapshots"],
        ["up"],
        ["mixture"],
        ["mixture", "build"],
        ["mixture", "show"],
        ["mixture", "sweep"],
        ["model"],
        ["model", "info"],
    ],
)
def test_every_command_explains_itself(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output and len(result.output.splitlines()) > 4


@pytest.fixture
def filled(lake, monkeypatch):
    lake.commit(
        [lake.stage("a", [sample("a", "k1"), sample("a", "k2", (2,)), sample("a", "bad", images=[b"x"])])]
    )
    monkeypatch.setenv("MM15_HOME", str(lake.root.parent))
    return lake


def test_sql_prints_a_table_and_json(filled):
    result = runner.invoke(app, ["catalog", "sql", "SELECT category, count(*) AS n FROM samples GROUP BY 1"])
    assert result.exit_code == 0 and "general" in result.output and "2" in result.output
    result = runner.invoke(app, ["catalog", "sql", "--json", "SELECT source, reason FROM rejects"])
    assert json.loads(result.output) == [{"source": "a", "reason": "bad_image"}]


def test_show_counts_per_category_and_split(filled):
    result = runner.invoke(app, ["catalog", "show", "--json"])
    data = json.loads(result.output)
    assert data["categories"]["general"] == {"train": 2, "eval": 0, "total": 2}
    assert data["rejects"] == {"bad_image": 1}


def test_user_mistakes_are_one_line_errors(filled):
    result = mm15("catalog", "sql", "DELETE FROM samples")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "read-only" in result.stderr
    assert "Traceback" not in result.stderr
    result = mm15("ingest", str(filled.root), "--format", "csv", "--name", "x", "--category", "general")
    assert result.returncode == 2 and "unknown format" in result.stderr and "Traceback" not in result.stderr
    result = mm15("catalog", "sql", "SELECT nope FROM samples")
    assert result.returncode == 2 and result.stderr.startswith("error:") and "Traceback" not in result.stderr


def test_missing_catalog_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("MM15_HOME", str(tmp_path))
    result = mm15("catalog", "show")
    assert result.returncode == 2 and "mm15 curate" in result.stderr


def test_model_info_prints_parameter_counts():
    result = runner.invoke(app, ["model", "info", "--preset", "tiny", "--json"])
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["preset"] == "tiny"
    result = mm15("model", "info", "--preset", "7b")
    assert result.returncode == 2 and "known: tiny" in result.stderr and "Traceback" not in result.stderr
