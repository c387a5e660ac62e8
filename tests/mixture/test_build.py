import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mm15.mixture.build import build_manifest
from mm15.mixture.manifest import MANIFEST_SCHEMA, content_hash, read_lineage, read_manifest
from mm15.mixture.spec import component_shares, expected_shares, load_spec, spec_from_dict, spec_to_dict
from mm15.mixture.summary import read_summary, summary_path
from tests.mixture.fixtures import MIXTURES, REALISTIC, RECIPE_ALL, SCHEMA, connect, write_catalog

ALL = load_spec("all", MIXTURES)
CPT = load_spec("cpt", MIXTURES)


def build(con, spec, tmp_path: Path, samples: int = 2560, seed: int = 0, name: str = "m"):
    out = tmp_path / f"{name}.parquet"
    return build_manifest(con, spec, samples=samples, seed=seed, snapshot=7, out=out), out


def catalog_rows(con) -> dict[str, tuple]:
    rows = con.execute("SELECT sample_id, category, source, split FROM samples").fetchall()
    return {sid: (cat, src, split) for sid, cat, src, split in rows}


def test_same_inputs_same_bytes_other_seed_other_manifest(catalog, tmp_path: Path) -> None:
    a, path_a = build(catalog, ALL, tmp_path, name="a")
    b, path_b = build(catalog, ALL, tmp_path, name="b")
    c, path_c = build(catalog, ALL, tmp_path, seed=1, name="c")
    assert path_a.read_bytes() == path_b.read_bytes()
    assert summary_path(path_a).read_bytes() == summary_path(path_b).read_bytes()
    assert a == b
    assert c.manifest_hash != a.manifest_hash and path_c.read_bytes() != path_a.read_bytes()
    assert c.categories == a.categories  # the seed moves rows, not shares


def test_same_rows_stored_differently_same_manifest(tmp_path: Path) -> None:
    first = connect(write_catalog(tmp_path / "a.parquet", REALISTIC))
    table = pq.read_table(tmp_path / "a.parquet")
    shuffled = table.take(np.random.default_rng(3).permutation(table.num_rows))
    pq.write_table(shuffled, tmp_path / "b.parquet", row_group_size=500)
    second = connect(tmp_path / "b.parquet")
    assert (
        build(first, ALL, tmp_path, name="a")[0].manifest_hash
        == build(second, ALL, tmp_path, name="b")[0].manifest_hash
    )


def test_manifest_columns_and_lineage(catalog, tmp_path: Path) -> None:
    summary, path = build(catalog, ALL, tmp_path)
    table = read_manifest(path)
    assert table.schema.remove_metadata() == MANIFEST_SCHEMA
    assert read_lineage(path) == {
        "mixture": "all",
        "snapshot": "7",
        "seed": "0",
        "manifest_hash": summary.manifest_hash,
    }
    meta = {k.decode(): v.decode() for k, v in table.schema.metadata.items() if k.startswith(b"mm15.")}
    assert meta == {
        "mm15.mixture": "all",
        "mm15.snapshot": "7",
        "mm15.seed": "0",
        "mm15.manifest_hash": summary.manifest_hash,
    }
    assert content_hash(table.replace_schema_metadata(None)) == summary.manifest_hash
    rows = table.to_pydict()
    assert rows["position"] == list(range(2560))
    assert rows["batch"] == [p // 256 for p in range(2560)]
    known = catalog_rows(catalog)
    for sid, cat, src in zip(rows["sample_id"], rows["category"], rows["source"], strict=True):
        assert known[sid] == (cat, src, "train")
    assert read_summary(path) == summary
    assert sorted(p.name for p in tmp_path.iterdir()) == ["catalog.parquet", "m.json", "m.parquet"]


def test_manifest_hash_is_content_not_file(catalog, tmp_path: Path) -> None:
    summary, path = build(catalog, ALL, tmp_path)
    table = read_manifest(path)
    pq.write_table(table, tmp_path / "other.parquet", compression="snappy", row_group_size=1000)
    assert content_hash(read_manifest(tmp_path / "other.parquet")) == summary.manifest_hash
    ids = table.column("sample_id").to_pylist()
    swapped = table.set_column(2, "sample_id", pa.array([ids[1], ids[0], *ids[2:]]))
    assert content_hash(swapped) != summary.manifest_hash


def test_all_realises_the_recipe_shares(catalog, tmp_path: Path) -> None:
    summary, path = build(catalog, ALL, tmp_path, samples=256 * 40)
    counts = Counter(read_manifest(path).column("category").to_pylist())
    for category, percent in RECIPE_ALL.items():
        realized = counts[category] / summary.samples
        assert summary.categories[category].realized == realized
        assert 100 * realized == pytest.approx(percent, abs=0.5)
        assert realized == pytest.approx(summary.categories[category].expected, abs=1 / summary.samples)


def test_every_batch_is_stratified(catalog, tmp_path: Path) -> None:
    samples = 256 * 30
    summary, path = build(catalog, ALL, tmp_path, samples=samples)
    table = read_manifest(path).to_pydict()
    shares = expected_shares(ALL)
    per_batch = Counter(zip(table["batch"], table["category"], strict=True))
    cumulative = Counter()
    for batch in range(samples // 256):
        for category, share in shares.items():
            count = per_batch[batch, category]
            assert abs(count - 256 * share) < 1, (batch, category, count)
            cumulative[category] += count
            assert abs(cumulative[category] - 256 * (batch + 1) * share) < 1
    assert summary.max_batch_deviation < 1


def test_cpt_gives_each_source_a_quarter_of_every_batch(catalog, tmp_path: Path) -> None:
    summary, path = build(catalog, CPT, tmp_path, samples=256 * 10 + 100)
    table = read_manifest(path).to_pydict()
    per_batch = Counter(zip(table["batch"], table["source"], strict=True))
    for batch in range(11):
        size = 256 if batch < 10 else 100
        assert [per_batch[batch, s] for s in ("pdfa", "idl", "renderedtext", "docstruct")] == [size // 4] * 4
    assert all(s.realized == 0.25 for s in summary.sources.values())
    assert summary.max_batch_deviation == 0


def test_batches_are_shuffled_not_blocked(catalog, tmp_path: Path) -> None:
    _, path = build(catalog, CPT, tmp_path, samples=256)
    sources = read_manifest(path).column("source").to_pylist()
    assert sources[:64] != [sources[0]] * 64  # not four blocks of 64
    assert sources != sorted(sources)


def test_unstratified_totals_exact_batches_random(catalog, tmp_path: Path) -> None:
    spec = spec_from_dict({**spec_to_dict(ALL), "stratified": False})
    summary, _ = build(catalog, spec, tmp_path, samples=256 * 20)
    assert summary.max_share_error <= 1 / summary.samples
    assert summary.max_batch_deviation > 2  # batches vary around the shares


def test_small_category_is_drawn_with_replacement_and_reported(tmp_path: Path) -> None:
    sizes = {**REALISTIC, ("science", "ai2d"): 5}
    con = connect(write_catalog(tmp_path / "c.parquet", sizes))
    summary, path = build(con, ALL, tmp_path, samples=2560)
    science = summary.categories["science"]
    assert science.samples == round(2560 * expected_shares(ALL)["science"]) == 29
    assert (science.available, science.unique) == (5, 5)
    assert science.repetition == pytest.approx(29 / 5)
    assert summary.repeated["science"] == pytest.approx(5.8)
    assert summary.repeated["science/ai2d"] == pytest.approx(5.8)
    assert "general" not in summary.repeated
    rows = [r for r in read_manifest(path).to_pylist() if r["category"] == "science"]
    first_use = [r["sample_id"] for r in rows if r["repeat"] == 0]
    assert len(first_use) == len(set(first_use)) == 5  # every row once before any row twice
    assert Counter(r["repeat"] for r in rows) == {0: 5, 1: 5, 2: 5, 3: 5, 4: 5, 5: 4}


def test_large_categories_are_drawn_without_replacement(catalog, tmp_path: Path) -> None:
    summary, path = build(catalog, ALL, tmp_path, samples=1000)
    table = read_manifest(path)
    assert summary.repeated == {}
    assert set(table.column("repeat").to_pylist()) == {0}
    assert len(set(table.column("sample_id").to_pylist())) == 1000


@pytest.mark.parametrize(
    ("within", "temperature", "ratio"),
    [("proportional", None, 3.0), ("uniform", None, 1.0), ("temperature", 2.0, 3**0.5)],
)
def test_sampling_across_sources(catalog, tmp_path: Path, within: str, temperature, ratio: float) -> None:
    spec = spec_from_dict({**spec_to_dict(ALL), "within_category": within, "temperature": temperature})
    summary, _ = build(catalog, spec, tmp_path, samples=256 * 20)
    llava, sharegpt = (
        summary.sources["general/llava"],
        summary.sources["general/sharegpt4v"],
    )  # 900 and 300 rows
    assert llava.samples / sharegpt.samples == pytest.approx(ratio, rel=0.02)
    assert llava.expected / sharegpt.expected == pytest.approx(ratio)
    assert llava.samples + sharegpt.samples == summary.categories["general"].samples


def test_more_draws_include_the_rows_of_fewer(catalog, tmp_path: Path) -> None:
    small, path_small = build(catalog, ALL, tmp_path, samples=500, name="small")
    large, path_large = build(catalog, ALL, tmp_path, samples=1500, name="large")
    ids_small = set(read_manifest(path_small).column("sample_id").to_pylist())
    ids_large = set(read_manifest(path_large).column("sample_id").to_pylist())
    assert ids_small < ids_large


def test_rows_sharing_a_hash64_are_told_apart(tmp_path: Path) -> None:
    path = write_catalog(tmp_path / "c.parquet", {("general", "llava"): 6})
    table = pq.read_table(path)
    hashes = table.column("hash64").to_numpy().copy()
    hashes[:] = hashes[0]  # every row collides
    pq.write_table(table.set_column(SCHEMA.get_field_index("hash64"), "hash64", pa.array(hashes)), path)
    con = connect(path)
    spec = spec_from_dict({"name": "g", "groups": {"g": {"alpha": {"general": 1}}}})
    summary, out = build(con, spec, tmp_path, samples=6)
    train = {sid for sid, (_, _, split) in catalog_rows(con).items() if split == "train"}
    assert set(read_manifest(out).column("sample_id").to_pylist()) == train
    assert summary.categories["general"].unique == 6


def test_refuses_bad_requests_before_writing(tmp_path: Path) -> None:
    con = connect(write_catalog(tmp_path / "c.parquet", {("general", "llava"): 5}))
    with pytest.raises(ValueError, match="category 'text_rich' has no train samples"):
        build(con, ALL, tmp_path)
    with pytest.raises(ValueError, match="samples must be positive"):
        build(
            con,
            spec_from_dict({"name": "g", "groups": {"g": {"alpha": {"general": 1}}}}),
            tmp_path,
            samples=0,
        )
    assert not list(tmp_path.glob("m.*"))


def test_summary_json_is_plain_data(catalog, tmp_path: Path) -> None:
    summary, path = build(catalog, CPT, tmp_path, samples=512)
    data = json.loads(summary_path(path).read_text())
    assert data["manifest_hash"] == summary.manifest_hash and len(summary.manifest_hash) == 64
    assert data["snapshot"] == 7 and data["spec"]["name"] == "cpt"
    assert set(data["sources"]) == {"ocr/pdfa", "ocr/idl", "ocr/renderedtext", "ocr/docstruct"}
    assert component_shares(CPT)["ocr/pdfa"] == data["sources"]["ocr/pdfa"]["expected"]
