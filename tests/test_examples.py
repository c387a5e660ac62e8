"""The example datasets under examples/ read and validate cleanly, as a staged shard would (no Prefect), and
the `mm15 ingest examples/...` commands that README.md and examples/README.md show name files that exist."""

from __future__ import annotations

import re
import shlex
from itertools import pairwise
from pathlib import Path

import pytest

from mm15.data.adapters import FORMATS, list_shards, read_shard
from mm15.data.record import CATEGORIES, SPLITS, Sample
from mm15.data.validate import Validated, validate

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
# per example folder: the samples it holds (every record valid, none quarantined)
EXPECTED_SAMPLES = {"llava": 6, "hf-parquet": 4, "wds-ocr": 3, "jsonl-text": 5}
INGEST = re.compile(r"mm15 ingest (?P<args>examples/[^`#\n]*)")  # in code blocks and `inline` code


def ingest_commands(document: Path) -> list[dict[str, str]]:
    """The `mm15 ingest examples/...` lines of a Markdown file, as {path, format, name, category, split}."""
    commands = []
    for match in INGEST.finditer(document.read_text()):
        words = shlex.split(match["args"].replace("[", "").replace("]", ""))
        options = {word[2:]: value for word, value in pairwise(words[1:]) if word.startswith("--")}
        missing = {"format", "name", "category"} - set(options)
        assert not missing, f"{document.name}: `mm15 ingest {match['args']}` lacks --{', --'.join(missing)}"
        commands.append({"split": "train", **options, "path": words[0]})
    return commands


EXAMPLE_COMMANDS = ingest_commands(EXAMPLES / "README.md")


def test_examples_readme_shows_one_command_per_example():
    folders = [Path(c["path"]).relative_to("examples").parts[0] for c in EXAMPLE_COMMANDS]
    assert sorted(folders) == sorted(EXPECTED_SAMPLES)
    assert all(c["format"] == folder in FORMATS for c, folder in zip(EXAMPLE_COMMANDS, folders, strict=True))


@pytest.mark.parametrize("document", ["README.md", "examples/README.md"])
def test_ingest_commands_name_paths_that_exist(document):
    commands = ingest_commands(ROOT / document)
    assert commands, f"{document} shows no `mm15 ingest examples/...` command"
    for command in commands:
        assert (ROOT / command["path"]).exists(), command["path"]
        assert list_shards(command["format"], ROOT / command["path"])
        assert re.fullmatch(r"[A-Za-z0-9_-]+", command["name"])
        assert command["category"] in CATEGORIES and command["split"] in SPLITS


@pytest.mark.parametrize("command", EXAMPLE_COMMANDS, ids=lambda c: c["format"])
def test_example_ingests_with_every_sample_kept(command):
    path = ROOT / command["path"]
    root = path if path.is_dir() else path.parent
    kept, rejects = [], []
    for shard in list_shards(command["format"], path):
        for record in read_shard(
            command["format"],
            shard,
            root,
            source=command["name"],
            category=command["category"],
            split=command["split"],
        ):
            result = validate(record) if isinstance(record, Sample) else record
            (kept if isinstance(result, Validated) else rejects).append(result)
    assert rejects == []
    assert len(kept) == EXPECTED_SAMPLES[command["format"]]
    assert len({row.sample.sample_id for row in kept}) == len(kept)  # no duplicates to drop at commit
