import itertools
import random

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from mm15.data.dedup import (
    BANDS,
    MAX_DISTANCE,
    hash_words,
    key_bands,
    near_hash_pairs,
    near_image_pairs,
    neighbours,
    perceptual_hash,
    text_key,
)
from tests.images import picture

# The join before the keyed one, kept as the reference: 16 bands of 16 bits joined one by one (exact by
# pigeonhole for d < 16, but unrelated hashes share a 16-bit band by chance: 16 N^2 / 2^17 candidates).
OLD_BAND_JOIN = """
    WITH n AS (
        SELECT image_id, phash, band, (phash[1 + band // 4] >> (16 * (band % 4))) & 65535 AS value
        FROM {new} CROSS JOIN range(16) t(band)
    ), e AS (
        SELECT image_id, phash, band, (phash[1 + band // 4] >> (16 * (band % 4))) & 65535 AS value
        FROM {every} CROSS JOIN range(16) t(band)
    )
    SELECT DISTINCT n.image_id, e.image_id
    FROM n JOIN e ON n.band = e.band AND n.value = e.value
    WHERE n.image_id <> e.image_id
      AND bit_count(xor(n.phash[1], e.phash[1]))::INTEGER + bit_count(xor(n.phash[2], e.phash[2]))::INTEGER
        + bit_count(xor(n.phash[3], e.phash[3]))::INTEGER + bit_count(xor(n.phash[4], e.phash[4]))::INTEGER
        <= ?
    ORDER BY 1, 2
"""


def old_pairs(con, new: str, every: str, max_distance: int = MAX_DISTANCE) -> list[tuple[str, str]]:
    return con.execute(OLD_BAND_JOIN.format(new=f'"{new}"', every=f'"{every}"'), [max_distance]).fetchall()


def distance(a: list[int], b: list[int]) -> int:
    return sum(bin((x ^ y) & (2**64 - 1)).count("1") for x, y in zip(a, b, strict=True))


def flip(h: list[int], bits: list[int]) -> list[int]:
    words = [w & (2**64 - 1) for w in h]
    for bit in bits:
        words[bit // 64] ^= 1 << (bit % 64)
    return [w - 2**64 if w >= 2**63 else w for w in words]


def test_hash_is_stable_under_resize_and_distinct_across_pictures():
    img = picture(3, (200, 160))
    h = perceptual_hash(img)
    assert len(h) == 4
    assert distance(h, perceptual_hash(img.resize((150, 120)))) <= MAX_DISTANCE
    assert distance(h, perceptual_hash(picture(4, (200, 160)))) > MAX_DISTANCE


def relation(con, name, rows):
    con.register(
        name,
        pa.table(
            {"image_id": [r[0] for r in rows], "phash": [r[1] for r in rows]},
            schema=pa.schema([("image_id", pa.string()), ("phash", pa.list_(pa.int64()))]),
        ),
    )


def test_band_join_finds_every_pair_within_the_threshold_and_no_other():
    base = perceptual_hash(picture(1))
    spread = list(range(0, 256, 256 // MAX_DISTANCE))[:MAX_DISTANCE]  # flips spread over every band
    con = duckdb.connect()
    relation(con, "new", [("a", base)])
    relation(
        con, "every", [("a", base), ("near", flip(base, spread)), ("far", flip(base, list(range(0, 256, 8))))]
    )
    assert near_image_pairs(con, "new", "every") == [("a", "near")]


def test_threshold_must_fit_the_bands():
    with pytest.raises(ValueError):
        near_image_pairs(duckdb.connect(), "a", "b", max_distance=BANDS)


def test_pairs_are_not_chained():
    near = neighbours([("a", "b"), ("b", "c")])
    assert near["a"] == {"b"} and near["b"] == {"a", "c"} and "a" not in near["c"]


def test_text_key_ignores_case_and_spacing():
    a = [{"role": "user", "content": "What  colour?"}, {"role": "assistant", "content": "Red"}]
    b = [{"role": "user", "content": "what colour? "}, {"role": "assistant", "content": "red"}]
    c = [{"role": "user", "content": "what colour?"}, {"role": "assistant", "content": "blue"}]
    assert text_key(a) == text_key(b) != text_key(c)


def test_band_join_agrees_with_comparing_every_pair():
    rng = random.Random(5)
    hashes = [flip([0, 0, 0, 0], rng.sample(range(256), 128)) for _ in range(60)]
    hashes += [flip(hashes[i], rng.sample(range(256), rng.randint(0, 15))) for i in range(40)]  # near copies
    rows = [(f"i{n:03d}", h) for n, h in enumerate(hashes)]
    con = duckdb.connect()
    relation(con, "new images", rows[::2])  # a name that needs quoting
    relation(con, "every", rows)
    for max_distance in (0, 5, MAX_DISTANCE, BANDS - 1):
        expected = sorted(
            (a, b) for a, ha in rows[::2] for b, hb in rows if a != b and distance(ha, hb) <= max_distance
        )
        assert near_image_pairs(con, "new images", "every", max_distance) == expected


def test_the_keys_cover_every_set_of_bands_that_two_near_hashes_surely_share():
    """The exactness argument, checked exhaustively: for each distance d, every set of 16 - d bands
    (the bands that two hashes within d bits at least agree on) holds both bands of some key."""
    for d in range(BANDS):
        keys = [(1 << b1) | (1 << b2) for b1, b2 in key_bands(d)]
        for agreeing in itertools.combinations(range(BANDS), BANDS - d):
            mask = sum(1 << b for b in agreeing)
            assert any(mask & key == key for key in keys), (d, agreeing)
    assert len(key_bands(MAX_DISTANCE)) == 35 and len(key_bands(0)) == 1


def planted(seed: int, n_random: int = 120) -> list[tuple[str, list[int]]]:
    """Random hashes, and near copies of them at every distance 0..16: flips spread at random, one
    flip in each of d bands (the worst case for bands), and copies of copies."""
    rng = random.Random(seed)
    hashes = [flip([0, 0, 0, 0], rng.sample(range(256), 128)) for _ in range(n_random)]
    for d in range(17):
        for _ in range(4):
            hashes.append(flip(rng.choice(hashes[:n_random]), rng.sample(range(256), d)))
            bits = [16 * band + rng.randrange(16) for band in rng.sample(range(BANDS), d)]
            hashes.append(flip(rng.choice(hashes[:n_random]), bits))
    hashes += [
        flip(rng.choice(hashes[n_random:]), rng.sample(range(256), rng.randint(0, 6))) for _ in range(40)
    ]
    return [(f"h{n:04d}", h) for n, h in enumerate(hashes)]


@pytest.mark.parametrize("seed", [1, 2])
def test_keyed_join_returns_the_old_joins_pairs_on_planted_copies(seed):
    rows = planted(seed)
    con = duckdb.connect()
    relation(con, "every", rows)
    relation(con, "new", rows[::3])
    for max_distance in range(BANDS):
        old = old_pairs(con, "new", "every", max_distance)
        assert near_image_pairs(con, "new", "every", max_distance) == old
        if max_distance == MAX_DISTANCE:
            assert len(old) > 50  # the case that matters has pairs to compare
    assert near_image_pairs(con, "every", "every") == old_pairs(con, "every", "every")


def test_numpy_search_agrees_with_comparing_every_pair():
    rows = planted(3)
    words = hash_words([h for _, h in rows])
    for max_distance in (0, 5, MAX_DISTANCE, 14, BANDS - 1):
        expected = [
            [i, j]
            for i, j in itertools.combinations(range(len(rows)), 2)
            if distance(rows[i][1], rows[j][1]) <= max_distance
        ]
        pairs, candidates = near_hash_pairs(words, max_distance)
        assert pairs.tolist() == expected and candidates >= len(expected)


def test_numpy_search_finds_every_pair_among_many_copies_of_one_hash():
    words = np.repeat(hash_words([perceptual_hash(picture(2))]), 30, axis=0)
    pairs, _ = near_hash_pairs(words)
    assert len(pairs) == 30 * 29 // 2


@pytest.mark.slow
def test_keyed_join_returns_the_old_joins_pairs_on_the_tiny_presets_images(tmp_path):
    """The project's own images: every image-bearing shard of the tiny preset staged (about a minute)."""
    from mm15.catalog.plan import synthetic_shards
    from mm15.catalog.staging import stage_shard

    specs = [s for s in synthetic_shards("tiny") if s.source != "syn_text_only"]
    for spec in specs:
        stage_shard(spec, tmp_path)
    con = duckdb.connect()
    con.execute(
        f"CREATE VIEW every AS SELECT image_id, phash FROM read_parquet('{tmp_path}/*/images.parquet')"
    )
    first = [str(tmp_path / s.key / "images.parquet") for s in specs[::2]]
    con.execute(f"CREATE VIEW new AS SELECT image_id, phash FROM read_parquet({first})")
    assert con.execute("SELECT count(*) FROM every").fetchone()[0] > 10_000
    for max_distance in (MAX_DISTANCE, BANDS - 1):
        old = old_pairs(con, "every", "every", max_distance)
        assert near_image_pairs(con, "every", "every", max_distance) == old and old
        assert near_image_pairs(con, "new", "every", max_distance) == old_pairs(
            con, "new", "every", max_distance
        )
    ids, phashes = zip(*con.execute("SELECT DISTINCT image_id, phash FROM every").fetchall(), strict=True)
    pairs, _ = near_hash_pairs(hash_words(phashes))
    assert sorted(tuple(sorted((ids[i], ids[j]))) for i, j in pairs.tolist()) == sorted(
        {tuple(sorted(p)) for p in old_pairs(con, "every", "every")}
    )
