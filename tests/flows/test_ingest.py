"""`mm15 ingest` end to end for every format: exact accounting, quarantine reasons, idempotence."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import pytest

from flows.curate import ingest
from mm15.catalog import catalog_exists, open_catalog
from mm15.data.adapters import FORMATS
from mm15.paths import catalog_dir
from tests.fixtures_formats import EXPECTED_RECORDS, make_source

pytestmark = pytest.mark.flow

CATEGORY = {"llava": "general", "hf-parquet": "text_rich", "wds-ocr": "ocr", "jsonl-text": "text_only"}


def query(home, sql):
    with open_catalog(catalog_dir(home)) as catalog:
        return catalog.query(sql)[1]


@pytest.mark.parametrize("fmt", FORMATS)
def test_ingest_quarantines_corrupt_input_and_accounts_for_every_row(prefect_api, home, tmp_path, fmt):
    path = make_source(fmt, tmp_path / "src", corrupt=True)
    expected = EXPECTED_RECORDS[fmt][True]
    result = ingest(path=str(path), format=fmt, name="fixture", category=CATEGORY[fmt], home=str(home))

    (row,) = result["accounting"]
    adapter_rejects = sum(expected["rejects"].values())
    validator_rejects = sum(expected["validator_rejects"].values())
    assert row["read"] == expected["samples"] + adapter_rejects
    assert row["quarantined"] == adapter_rejects + validator_rejects
    assert row["kept"] + row["duplicates"] == expected["samples"] - validator_rejects
    assert row["read"] == row["kept"] + row["quarantined"] + row["duplicates"] + row["contaminated"]

    reasons = Counter(
        dict(query(home, "SELECT reason, count(*) FROM rejects WHERE reason <> 'duplicate' GROUP BY 1"))
    )
    assert reasons == Counter(expected["rejects"]) + Counter(expected["validator_rejects"])
    assert query(home, "SELECT count(*) FROM samples WHERE source = 'fixture'") == [(row["kept"],)]
    assert query(home, "SELECT count(*) FROM rejects WHERE detail = '' OR key = ''") == [(0,)]

    again = ingest(path=str(path), format=fmt, name="fixture", category=CATEGORY[fmt], home=str(home))
    assert not again["committed"] and again["snapshot"] == result["snapshot"]


def test_the_same_data_under_another_name_is_all_duplicates(prefect_api, home, tmp_path):
    path = make_source("llava", tmp_path / "src")
    first = ingest(path=str(path), format="llava", name="first", category="general", home=str(home))
    second = ingest(path=str(path), format="llava", name="second", category="general", home=str(home))
    kept = first["accounting"][0]["kept"]
    assert kept == EXPECTED_RECORDS["llava"][False]["samples"]
    assert second["accounting"][0]["duplicates"] == kept and second["accounting"][0]["kept"] == 0
    assert query(home, "SELECT DISTINCT source FROM samples") == [("first",)]


def test_ingest_command_line(prefect_api, home, tmp_path):
    path = make_source("jsonl-text", tmp_path / "src")
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "MM15_HOME": str(home)}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "mm15.cli",
            "ingest",
            str(path),
            "--format",
            "jsonl-text",
            "--name",
            "texts",
            "--category",
            "text_only",
            "--split",
            "eval",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "Committed snapshot" in run.stdout
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mm15.cli",
            "catalog",
            "sql",
            "--json",
            "SELECT source, split, count(*) AS n FROM samples GROUP BY ALL",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert json.loads(out.stdout) == [
        {"source": "texts", "split": "eval", "n": EXPECTED_RECORDS["jsonl-text"][False]["samples"]}
    ]


@pytest.mark.parametrize(
    ("fmt", "name", "content", "problem"),
    [
        (
            "llava",
            "notllava.json",
            json.dumps({"rows": [1, 2, 3]}),
            "expected a JSON array of records, got object",
        ),
        ("llava", "chat.jsonl", '{"messages": []}\n{"messages": []}\n', "record has no 'conversations'"),
        ("jsonl-text", "llava.jsonl", '{"conversations": []}\n', "line has no 'messages'"),
    ],
)
def test_a_file_in_another_format_is_refused_and_nothing_is_committed(
    prefect_api, home, tmp_path, fmt, name, content, problem
):
    path = tmp_path / name
    path.write_text(content)
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "MM15_HOME": str(home)}
    result = subprocess.run(
        [sys.executable, "-m", "mm15.cli", "ingest", str(path), "--format", fmt, "--name", "x"]
        + ["--category", "general"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        f"error: {path}: no record could be read as {fmt} ({problem}); check --format\n"
    ), result.stderr
    assert not catalog_exists(catalog_dir(home))  # nothing committed, not even an empty catalog
    assert not [p for p in (home / "staging").glob("*") if p.is_dir()]  # and nothing left staged
