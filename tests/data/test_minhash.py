import numpy as np
import pytest

from mm15.data.minhash import (
    BANDS,
    EMPTY,
    ROWS,
    THRESHOLD,
    bucket_pairs,
    compact,
    estimate,
    near_pairs,
    s_curve,
    shingles,
    signatures,
    verify_threshold,
)


def random_set(rng, size=200) -> np.ndarray:
    return np.unique(rng.integers(0, 1 << 32, size, dtype=np.uint64)).astype(np.uint32)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    a, b = set(a.tolist()), set(b.tolist())
    return len(a & b) / len(a | b)


def with_jaccard(rng, base: np.ndarray, j: float) -> np.ndarray:
    """A copy of `base` with x elements replaced: Jaccard (n - x) / (n + x), about j."""
    x = round(len(base) * (1 - j) / (1 + j))
    copy = base.copy()
    copy[rng.choice(len(base), x, replace=False)] = rng.integers(0, 1 << 32, x, dtype=np.uint64)
    return copy


def background(n: int, seed: int = 1) -> np.ndarray:
    """Compact signatures of sets that share nothing: independent uniform values."""
    return np.random.default_rng(seed).integers(0, 1 << 16, (n, 128), dtype=np.uint16)


def test_shingles_ignore_case_and_spacing_and_keep_word_order():
    assert np.array_equal(shingles("The cat  sat on the MAT"), shingles("the cat sat on the mat "))
    assert not np.array_equal(shingles("the cat sat on the mat"), shingles("the mat sat on the cat"))
    assert len(shingles("two words")) == 1 and len(shingles("  ")) == 0


def test_signatures_are_deterministic_per_seed_and_ignore_element_order():
    s = random_set(np.random.default_rng(0))
    a = signatures([s, s[::-1]])
    assert a.dtype == np.uint32 and a.shape == (2, 128)
    assert np.array_equal(a[0], a[1]) and np.array_equal(a, signatures([s, s[::-1]], seed=0))
    assert estimate(a[0], signatures([s], seed=1)[0]) < 0.1  # another seed, other hash functions


def test_batches_and_empty_sets_do_not_change_signatures():
    rng = np.random.default_rng(1)
    sets = [random_set(rng, 50), np.zeros(0, np.uint32), random_set(rng, 300), random_set(rng, 1)]
    whole = signatures(sets)
    assert np.array_equal(whole, signatures(sets, batch=64))
    assert np.array_equal(whole[2], signatures([sets[2]])[0])
    assert (whole[1] == EMPTY).all()


@pytest.mark.parametrize("target", [0.2, 0.5, 0.8, 0.95, 1.0])
def test_estimate_is_close_to_the_exact_jaccard(target):
    rng = np.random.default_rng(2)
    base = random_set(rng, 400)
    copy = with_jaccard(rng, base, target)
    exact = jaccard(base, copy)
    sig = signatures([base, copy])
    sd = np.sqrt(exact * (1 - exact) / 128)
    assert abs(estimate(sig[0], sig[1]) - exact) <= 4 * sd + 1e-9
    assert abs(estimate(*compact(sig)) - exact) <= 4 * sd + 1e-9


def test_the_chosen_bands_miss_almost_no_pair_at_the_threshold():
    assert BANDS * ROWS == 128
    assert 1 - s_curve(THRESHOLD) < 1e-7 and 1 - s_curve(0.7) < 1e-3
    assert (
        verify_threshold(0.8, 128) == 88 / 128 and abs(verify_threshold(0.8, 128, miss=0.5) - 0.8) < 1 / 128
    )


def test_planted_pairs_above_the_threshold_are_found():
    sig = background(20_000)
    rng = np.random.default_rng(3)
    bases = [random_set(rng) for _ in range(300)]
    copies = [with_jaccard(rng, b, j) for b, j in zip(bases, rng.uniform(0.8, 1.0, 300), strict=True)]
    sig[:300] = compact(signatures(bases))
    sig[300:600] = compact(signatures(copies))
    pairs, stats = near_pairs(sig)
    found = {tuple(p) for p in pairs.tolist()}
    above = [i for i in range(300) if jaccard(bases[i], copies[i]) >= THRESHOLD]
    assert sum((i, 300 + i) in found for i in above) >= 0.99 * len(above) > 250
    assert stats.found == len(pairs) and stats.candidates >= len(pairs)
    assert found <= {(i, 300 + i) for i in range(300)}  # nothing among the unrelated records


def test_no_pair_below_the_verification_threshold_is_returned():
    sig = background(5_000)
    rng = np.random.default_rng(4)
    bases = [random_set(rng) for _ in range(200)]
    targets = np.linspace(0.5, 1.0, 200)
    sig[:200] = compact(signatures(bases))
    sig[200:400] = compact(signatures([with_jaccard(rng, b, j) for b, j in zip(bases, targets, strict=True)]))
    for verify_at in (None, THRESHOLD):
        pairs, stats = near_pairs(sig, verify_at=verify_at)
        assert stats.verify_at == (88 / 128 if verify_at is None else THRESHOLD)
        assert len(pairs) and (estimate(sig[pairs[:, 0]], sig[pairs[:, 1]]) >= stats.verify_at).all()
        assert stats.candidates > stats.found  # some pairs of J ~ 0.5 were candidates, and rejected
    assert {tuple(p) for p in pairs.tolist()} <= {(i, 200 + i) for i in range(200)}


def test_big_buckets_become_a_star_around_the_smallest_index_and_are_counted():
    sig = background(3_000)
    copies = np.random.default_rng(5).choice(3_000, 250, replace=False)
    sig[copies] = sig[copies[0]]
    leader, others = copies.min(), np.sort(copies[copies != copies.min()])
    pairs, stats = near_pairs(sig, max_bucket=100)
    assert pairs.tolist() == [[leader, o] for o in others]
    assert stats.oversized_buckets == BANDS  # the copies share a key in every band
    assert stats.skipped_pairs == BANDS * (250 * 249 // 2 - 249)
    everything, stats = near_pairs(sig, max_bucket=None)
    assert len(everything) == 250 * 249 // 2 and stats.oversized_buckets == stats.skipped_pairs == 0


def test_bucket_pairs_on_sorted_keys():
    keys = np.array([1, 2, 2, 3, 5, 5, 5, 7])
    members = np.array([10, 4, 2, 8, 9, 0, 6, 1])
    i, j, big, skipped = bucket_pairs(keys, members)
    assert sorted(zip(i.tolist(), j.tolist(), strict=True)) == [(0, 6), (0, 9), (2, 4), (6, 9)]
    i, j, big, skipped = bucket_pairs(keys, members, max_bucket=2)
    assert sorted(zip(i.tolist(), j.tolist(), strict=True)) == [(0, 6), (0, 9), (2, 4)]
    assert (big, skipped) == (1, 1)
    assert len(bucket_pairs(np.arange(5), np.arange(5))[0]) == 0


def test_full_width_signatures_give_the_same_pairs_as_compact_ones():
    rng = np.random.default_rng(6)
    bases = [random_set(rng) for _ in range(100)]
    sets = bases + [with_jaccard(rng, b, j) for b, j in zip(bases, rng.uniform(0.6, 1.0, 100), strict=True)]
    sets += [random_set(rng) for _ in range(800)]
    sig = signatures(sets)
    assert np.array_equal(near_pairs(sig)[0], near_pairs(compact(sig))[0])  # 64-bit mix vs exact keys


def test_bands_must_fit_the_signature():
    with pytest.raises(ValueError):
        near_pairs(background(10), bands=33, rows=4)
