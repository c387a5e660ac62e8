from pathlib import Path

import pyarrow as pa

from mm15.mixture.manifest import (
    MANIFEST_SCHEMA,
    ROW_GROUP_ROWS,
    ContentHasher,
    content_hash,
    read_lineage,
    read_manifest,
    write_manifest,
)


def table(ids: list[str]) -> pa.Table:
    n = len(ids)
    columns = {
        "position": list(range(n)),
        "batch": [0] * n,
        "sample_id": ids,
        "category": ["general"] * n,
        "source": ["llava"] * n,
        "repeat": [0] * n,
        "n_images": [1] * n,
    }
    return pa.table(columns, schema=MANIFEST_SCHEMA)


def test_hash_depends_on_values_not_layout() -> None:
    base = table(["a", "bb", "c"])
    sliced = table(["z", "a", "bb", "c"]).slice(1)
    sliced = sliced.set_column(0, "position", pa.array([0, 1, 2], pa.int64()))
    assert content_hash(sliced) == content_hash(base)
    assert content_hash(table(["ab", "b", "c"])) != content_hash(base)  # same bytes, other boundaries
    chunked = pa.concat_tables([base.slice(0, 1), base.slice(1)])
    assert content_hash(chunked) == content_hash(base)


def test_hash_sees_nulls() -> None:
    with_value = table(["a", "b"])
    with_null = with_value.set_column(6, "n_images", pa.array([1, None], pa.int32()))
    zero = with_value.set_column(6, "n_images", pa.array([1, 0], pa.int32()))
    assert len({content_hash(with_value), content_hash(with_null), content_hash(zero)}) == 3


def test_write_is_deterministic_and_atomic(tmp_path: Path) -> None:
    first = write_manifest(table(["a", "b"]), tmp_path / "a.parquet", {"snapshot": "3"})
    second = write_manifest(table(["a", "b"]), tmp_path / "b.parquet", {"snapshot": "3"})
    assert first.read_bytes() == second.read_bytes()
    assert read_lineage(first) == {"snapshot": "3"}
    assert read_manifest(first).to_pylist() == table(["a", "b"]).to_pylist()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.parquet", "b.parquet"]


def test_chunking_changes_neither_hash_nor_bytes(tmp_path: Path) -> None:
    n = ROW_GROUP_ROWS + 5
    whole = table([f"id{i}" for i in range(n)])
    hasher = ContentHasher(MANIFEST_SCHEMA)
    for start, stop in [(0, 7), (7, 1000), (1000, n)]:
        hasher.update(whole.slice(start, stop - start))
    assert hasher.hexdigest() == content_hash(whole)
    chunked = write_manifest(
        iter([whole.slice(0, ROW_GROUP_ROWS), whole.slice(ROW_GROUP_ROWS)]), tmp_path / "a"
    )
    assert chunked.read_bytes() == write_manifest(whole, tmp_path / "b").read_bytes()
    assert read_manifest(chunked).num_rows == n
