import duckdb
import pyarrow as pa
import pytest

from mm15.data.dedup import BANDS, MAX_DISTANCE, near_image_pairs, neighbours, perceptual_hash, text_key
from tests.images import picture


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
    import random

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
