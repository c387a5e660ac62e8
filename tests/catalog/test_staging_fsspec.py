"""Staging under a URL (fsspec): each try writes a folder of its own, a marker written last completes the
shard, and a commit reads the staged files through fsspec, giving the catalog a local folder gives."""

from __future__ import annotations

import json
import uuid

import fsspec
import pyarrow.parquet as pq
import pytest

from mm15 import paths
from mm15.catalog import open_catalog, staging
from mm15.catalog.commit import commit_shards
from mm15.catalog.staging import (
    MARKER,
    ShardSpec,
    is_staged,
    read_stats,
    remove_staged,
    stage_records,
    stage_shard,
    unreadable_sources,
)
from mm15.catalog.staging_area import LocalArea, RemoteArea, staging_area
from mm15.data.record import Reason, Reject
from tests.lake import sample, staging_records

SPEC = ShardSpec(source="src", split="train", category="general", format="test")
TABLES = ("samples", "images", "rejects")


def without_seconds(stats: dict) -> dict:
    return {k: v for k, v in stats.items() if k != "seconds"}


def test_a_folder_or_a_url_chooses_the_area(tmp_path, monkeypatch):
    assert isinstance(staging_area(tmp_path), LocalArea) and isinstance(
        staging_area(str(tmp_path)), LocalArea
    )
    area = staging_area(tmp_path.as_uri())
    assert isinstance(area, RemoteArea) and staging_area(area) is area
    monkeypatch.delenv("MM15_STAGING_URL", raising=False)
    assert paths.staging_url(tmp_path) == str(tmp_path / "staging")
    monkeypatch.setenv("MM15_STAGING_URL", "s3://bucket/staging")
    assert paths.staging_url(tmp_path) == "s3://bucket/staging"


def test_a_url_shard_is_an_attempt_folder_and_a_marker_naming_it(tmp_path):
    url = (tmp_path / "remote").as_uri()
    assert not is_staged(url, SPEC)
    stats = stage_records(SPEC, staging_records(), url)
    local = stage_records(SPEC, staging_records(), tmp_path / "local")
    assert without_seconds(stats) == without_seconds(local)
    assert (stats["read"], stats["valid"], stats["quarantined"]) == (5, 3, 2)

    shard = tmp_path / "remote" / SPEC.key
    (attempt,) = [p for p in shard.iterdir() if p.is_dir()]
    assert sorted(p.name for p in shard.iterdir()) == sorted([attempt.name, MARKER])
    marker = json.loads((shard / MARKER).read_text())
    assert marker == {"attempt": attempt.name, "stats": stats}
    assert is_staged(url, SPEC) and read_stats(url, SPEC) == stats
    assert json.loads((attempt / "stats.json").read_text()) == stats
    # the same Parquet bytes as on the local disk
    for name in TABLES:
        assert (attempt / f"{name}.parquet").read_bytes() == (
            tmp_path / "local" / SPEC.key / f"{name}.parquet"
        ).read_bytes()


def test_a_staged_url_shard_is_not_read_again(tmp_path, monkeypatch):
    url = (tmp_path / "remote").as_uri()
    first = stage_records(SPEC, staging_records(), url)

    def refuse(spec):
        raise AssertionError(f"shard {spec.key} was read again")

    monkeypatch.setattr(staging, "read_records", refuse)
    assert stage_shard(SPEC, url) == first
    assert len([p for p in (tmp_path / "remote" / SPEC.key).iterdir() if p.is_dir()]) == 1


def test_a_failed_try_leaves_no_marker_and_no_folder(tmp_path):
    url = (tmp_path / "remote").as_uri()

    def failing():
        yield from staging_records()[:3]
        raise OSError("the source went away")

    with pytest.raises(OSError, match="the source went away"):
        stage_records(SPEC, failing(), url)
    assert not is_staged(url, SPEC)
    assert list((tmp_path / "remote" / SPEC.key).iterdir()) == []
    assert stage_records(SPEC, staging_records(), url)["read"] == 5  # a retry stages it whole
    assert is_staged(url, SPEC)


def test_the_marker_is_written_last(tmp_path, monkeypatch):
    """A try that fails writing its marker has written everything else, and is not staged."""
    url = (tmp_path / "remote").as_uri()
    fs = fsspec.filesystem("file")
    real_pipe = type(fs).pipe_file
    written = []

    def pipe_file(self, path, value, *args, **kwargs):
        written.append(path.rsplit("/", 1)[-1])
        if path.endswith(MARKER):
            raise OSError("the connection dropped")
        return real_pipe(self, path, value, *args, **kwargs)

    monkeypatch.setattr(type(fs), "pipe_file", pipe_file)
    with pytest.raises(OSError, match="the connection dropped"):
        stage_records(SPEC, staging_records(), url)
    assert written == ["stats.json", MARKER]
    assert not is_staged(url, SPEC) and list((tmp_path / "remote" / SPEC.key).iterdir()) == []


def test_a_killed_try_is_ignored_and_the_shard_restaged(tmp_path, monkeypatch):
    """A worker killed mid-shard leaves an attempt folder without a marker: the shard is restaged in a
    folder of its own and the commit reads only that one."""
    url = (tmp_path / "remote").as_uri()
    killed = tmp_path / "remote" / SPEC.key / uuid.uuid4().hex[:12]
    killed.mkdir(parents=True)
    (killed / "samples.parquet").write_bytes(b"half written")
    assert not is_staged(url, SPEC)
    monkeypatch.setattr(staging, "read_records", lambda spec: iter(staging_records()))
    assert stage_shard(SPEC, url)["read"] == 5 and is_staged(url, SPEC)
    with open_catalog(tmp_path / "catalog", read_only=False) as catalog:
        result = commit_shards(catalog, url, [SPEC], message="after a killed try")
    assert sum(a["kept"] for a in result.accounting) == 3
    remove_staged(url, SPEC)
    assert not (tmp_path / "remote" / SPEC.key).exists() and not is_staged(url, SPEC)


def shards(stage_into) -> list[ShardSpec]:
    """Three shards of two sources with a duplicate across them and quarantined rows."""
    specs = []
    for source, start, records in (
        ("a", 0, [sample("a", "k1", (1,)), sample("a", "k2", (2,)), sample("a", "bad", images=[b"x"])]),
        ("a", 3, [sample("a", "k3", (3,), text="Count them.")]),
        ("b", 0, [sample("b", "k1", (1,)), sample("b", "k4", (4,))]),
    ):
        spec = ShardSpec(source=source, split="train", category="general", format="test", start=start)
        stage_into(spec, records)
        specs.append(spec)
    return specs


def commit_all(root, staging_location, specs) -> list[tuple]:
    with open_catalog(root, read_only=False) as catalog:
        result = commit_shards(catalog, staging_location, specs, message="test")
    assert result.committed
    with open_catalog(root) as catalog:
        samples = catalog.query("SELECT source, split, key, sample_id, messages FROM samples ORDER BY ALL")[1]
        rejects = catalog.query("SELECT source, key, reason, detail FROM rejects ORDER BY ALL")[1]
        images = catalog.query("SELECT image_id, bytes FROM images ORDER BY ALL")[1]
    return [samples, rejects, images, result.accounting]


def catalog_of(tmp_path, location) -> list:
    specs = shards(lambda spec, records: stage_records(spec, records, location))
    found = commit_all(tmp_path / f"catalog-{uuid.uuid4().hex[:6]}", location, specs)
    *tables, accounting = found
    return [*tables, [{k: v for k, v in a.items() if k != "commit_id"} for a in accounting]]


def test_a_file_url_commits_the_catalog_a_local_folder_does(tmp_path):
    local = catalog_of(tmp_path, tmp_path / "local-staging")
    remote = catalog_of(tmp_path, (tmp_path / "url-staging").as_uri())
    assert remote == local
    samples, rejects, *_ = local
    assert [(s[0], s[2]) for s in samples] == [("a", "k1"), ("a", "k2"), ("a", "k3"), ("b", "k4")]
    assert [(r[1], r[2]) for r in rejects] == [("bad", Reason.BAD_IMAGE), ("k1", Reason.DUPLICATE)]


def test_memory_url_staging_and_commit_in_process(tmp_path):
    """Nothing assumes a local path: a memory:// staging area (this process only) stages and commits."""
    url = f"memory://mm15-test-{uuid.uuid4().hex[:8]}/staging"
    specs = shards(lambda spec, records: stage_records(spec, records, url))
    assert all(is_staged(url, s) for s in specs)
    assert unreadable_sources(url, specs) == []  # "test" shards are not file-based: nothing to check
    samples, rejects, _, accounting = commit_all(tmp_path / "catalog", url, specs)
    assert len(samples) == 4 and len(rejects) == 2
    assert sum(a["read"] for a in accounting) == 6
    for spec in specs:
        remove_staged(url, spec)
    assert fsspec.filesystem("memory").ls(url.removeprefix("memory://")) == []


def test_one_connection_commits_from_two_url_areas(tmp_path):
    """The fsspec filesystem registered with the catalog's connection follows the staging area."""
    one, two = ((tmp_path / name).as_uri() for name in ("one", "two"))
    first = ShardSpec(source="a", split="train", category="general", format="test")
    second = ShardSpec(source="b", split="train", category="general", format="test")
    stage_records(first, [sample("a", "k1", (1,))], one)
    stage_records(second, [sample("b", "k2", (2,))], two)
    with open_catalog(tmp_path / "catalog", read_only=False) as catalog:
        commit_shards(catalog, one, [first], message="one")
        commit_shards(catalog, two, [second], message="two")
        assert catalog.query("SELECT source, key FROM samples ORDER BY ALL")[1] == [("a", "k1"), ("b", "k2")]


def test_an_unreadable_source_is_found_under_a_url(tmp_path):
    url = (tmp_path / "remote").as_uri()
    spec = ShardSpec(source="src", split="train", category="general", format="jsonl-text", path="/x/a.jsonl")
    stage_records(spec, [Reject("src", "a.jsonl:1", Reason.INVALID_JSON, "Expecting value")], url)
    (problem,) = unreadable_sources(url, [spec])
    assert problem.startswith("/x/a.jsonl: no record could be read as jsonl-text (Expecting value)")


def test_pyarrow_reads_a_url_shard(tmp_path):
    url = (tmp_path / "remote").as_uri()
    stage_records(SPEC, staging_records(), url)
    path, filesystem = staging_area(url).file(SPEC.key, "samples.parquet")
    assert [r["key"] for r in pq.read_table(path, filesystem=filesystem).to_pylist()] == ["k0", "k1", "k2"]
