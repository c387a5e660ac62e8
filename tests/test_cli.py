"""The `mm15` command: help everywhere, one-line errors, read-only catalog queries, literal output."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from mm15.cli import app
from mm15.errors import UserError

runner = CliRunner()


def mm15(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mm15.cli", *args], capture_output=True, text=True, timeout=120, env=env
    )


def one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


COMMANDS = {
    (): "curate",
    ("curate",): "--preset",
    ("ingest",): "--format",
    ("run",): "--preset",
    ("catalog",): "snapshots",
    ("catalog", "sql"): "QUERY",
    ("catalog", "show"): "--snapshot",
    ("catalog", "snapshots"): "--json",
    ("catalog", "vacuum"): "no snapshot references",
    ("up",): "--prefect-port",
    ("down",): "process group",
    ("mixture",): "sweep",
    ("mixture", "build"): "--samples",
    ("mixture", "show"): "NAME",
    ("mixture", "sweep"): "--alphas",
    ("model",): "info",
    ("model", "info"): "--preset",
    ("promote",): "--force",
    ("models",): "list",
    ("models", "list"): "--json",
    ("models", "register"): "CHECKPOINT",
}


@pytest.mark.parametrize(
    ("command", "mentions"), COMMANDS.items(), ids=[" ".join(c) or "mm15" for c in COMMANDS]
)
def test_every_command_explains_itself(command, mentions):
    result = runner.invoke(app, [*command, "--help"], prog_name="mm15")
    assert result.exit_code == 0
    assert result.output.startswith(f"Usage: mm15 {' '.join(command)}".rstrip() + " ")
    assert mentions in result.output


@pytest.fixture
def filled(shared_lake, monkeypatch):
    """The session's read-only catalog (k1, k2 kept; one bad_image reject) as MM15_HOME."""
    monkeypatch.setenv("MM15_HOME", str(shared_lake.root.parent))
    return shared_lake


def test_sql_prints_a_table_and_json(filled):
    result = runner.invoke(app, ["catalog", "sql", "SELECT category, count(*) AS n FROM samples GROUP BY 1"])
    assert result.exit_code == 0
    rows = [line.split() for line in result.output.splitlines() if "general" in line]
    assert rows == [["│", "general", "│", "2", "│"]]
    result = runner.invoke(app, ["catalog", "sql", "--json", "SELECT source, reason FROM rejects"])
    assert json.loads(result.output) == [{"source": "a", "reason": "bad_image"}]


@pytest.mark.slow  # runs the command in a subprocess
def test_values_print_literally_and_are_not_cut_when_piped(filled):
    markup = "[bold red]hi[/bold red] [/x/y]"
    wide = "w" * 300
    result = mm15("catalog", "sql", f"SELECT '{markup}' AS m, '{wide}' AS wide", env=filled.env())
    assert result.returncode == 0, result.stderr
    assert markup in result.stdout and wide in result.stdout


def test_show_counts_per_category_and_split(filled):
    result = runner.invoke(app, ["catalog", "show", "--json"])
    data = json.loads(result.output)
    assert data["categories"]["general"] == {"train": 2, "eval": 0, "total": 2}
    assert data["rejects"] == {"bad_image": 1}
    assert data["snapshot"] == filled.snapshot()


def test_snapshots_explain_their_numbering(filled):
    snaps = json.loads(runner.invoke(app, ["catalog", "snapshots", "--json"]).output)
    assert [s["snapshot"] for s in snaps] == [1, 2]
    assert snaps[0]["message"].startswith("created the catalog tables")
    assert snaps[1]["info"]["kept"] == 2 and snaps[1]["info"]["quarantined"] == 1


@pytest.mark.slow  # runs the command in a subprocess
def test_user_mistakes_are_one_line_errors(filled):
    env = filled.env()
    one_line_error(mm15("catalog", "sql", "DELETE FROM samples", env=env), "read-only")
    one_line_error(mm15("catalog", "sql", "SELEC nonsense", env=env), "error: SQL: Parser Error")
    one_line_error(mm15("catalog", "sql", "SELECT", env=env), "error: SQL:")
    one_line_error(mm15("catalog", "sql", "SELECT nope FROM samples", env=env), '"nope" not found')
    one_line_error(mm15("catalog", "show", "--snapshot", "-1", env=env), "no snapshot -1")
    one_line_error(mm15("catalog", "show", "--snapshot", "99", env=env), "no snapshot 99")
    one_line_error(
        mm15("ingest", str(filled.root), "--format", "csv", "--name", "x", "--category", "general", env=env),
        "error: mm15 ingest: format: unknown format 'csv': choose one of llava, hf-parquet",
    )


@pytest.mark.slow  # runs the command in a subprocess
def test_missing_catalog_says_what_to_do(tmp_path):
    one_line_error(mm15("catalog", "show", env={**os.environ, "MM15_HOME": str(tmp_path)}), "mm15 curate")


def test_model_info_prints_parameter_counts():
    from mm15.model.info import describe

    result = runner.invoke(app, ["model", "info", "--preset", "tiny", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.output) == json.loads(json.dumps(describe("tiny")))


@pytest.mark.slow  # runs the command in a subprocess
def test_an_unknown_model_preset_is_one_line():
    one_line_error(mm15("model", "info", "--preset", "7b"), "known: tiny")


@pytest.mark.slow  # runs the command in a subprocess
def test_sql_prints_at_most_limit_rows_and_counts_the_others(filled):
    env, query = filled.env(), "SELECT range AS i FROM range(2500)"
    result = mm15("catalog", "sql", query, env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert sum(line.startswith("│") for line in lines) == 1000
    assert lines[-1] == "1,000 of 2,500 rows shown (--limit N shows N, --limit 0 all)"
    result = mm15("catalog", "sql", "--json", "--limit", "3", query, env=env)
    assert json.loads(result.stdout) == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert result.stderr == "3 of 2,500 rows shown (--limit N shows N, --limit 0 all)\n"
    result = mm15("catalog", "sql", "--json", "--limit", "0", query, env=env)
    assert len(json.loads(result.stdout)) == 2500 and result.stderr == ""
    one_line_error(mm15("catalog", "sql", "--limit", "-1", query, env=env), "--limit")


def test_sql_over_the_memory_limit_is_a_one_line_error(filled, monkeypatch):
    from mm15.cli import catalog

    monkeypatch.setattr(catalog, "SQL_MEMORY_LIMIT", "16MB")
    monkeypatch.setattr(catalog, "SQL_TEMP_LIMIT", "0B")
    result = runner.invoke(app, ["catalog", "sql", "SELECT length(list(range)) FROM range(10000000)"])
    assert isinstance(result.exception, UserError)
    assert str(result.exception).startswith("SQL: Out of Memory Error") and "\n" not in str(result.exception)


@pytest.mark.slow  # runs the command in a subprocess
def test_sql_cannot_read_files_in_the_working_folder(filled, tmp_path, monkeypatch):
    (tmp_path / ".tmp").mkdir()
    (tmp_path / ".tmp" / "s.csv").write_text("a,b\n1,2\n")
    monkeypatch.chdir(tmp_path)
    result = mm15("catalog", "sql", "SELECT * FROM read_csv('.tmp/s.csv')", env=filled.env())
    one_line_error(result, "error: SQL: Permission Error")


@pytest.mark.slow  # runs the command in a subprocess
def test_writes_hidden_in_a_cte_and_syntax_errors_are_one_line_errors(filled):
    env = filled.env()
    for query in (
        "WITH x AS (DELETE FROM samples RETURNING *) SELECT * FROM x",
        "WITH x AS (INSERT INTO rejects SELECT * FROM rejects RETURNING *) SELECT * FROM x",
        "SELECT * FROM samples WHERE",
        "SELECT (1",
        "EXPLAIN DELETE FROM samples",
    ):
        one_line_error(mm15("catalog", "sql", query, env=env), "error: ")
    assert filled.query("SELECT count(*) FROM samples") == [(2,)]
